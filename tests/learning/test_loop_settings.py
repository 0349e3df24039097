"""The learning loop's settings: the rules' retrain section plus the size of a job from the
configuration (server/config.py `TrainerConfig`); a job carries its size to whoever runs it."""

from __future__ import annotations

import pytest

from game_rules.heldout import percent_of
from game_rules.settings import SettingsError, with_changes
from server.config import TrainerConfig, default_rules
from server.learning.loop import LearningSettings


def test_defaults_come_from_the_rules() -> None:
    rules = default_rules()
    settings = LearningSettings.from_config(rules, TrainerConfig())
    assert settings.retrain_after == rules.retrain.new_verified_threshold
    assert settings.auto_open == rules.retrain.auto_open_next_round
    assert settings.heldout_percent == percent_of(rules.retrain.heldout_fraction) == 20
    assert (settings.train_limit, settings.threads, settings.mnist_floor) == (None, 1, 0.985)
    assert not settings.external


def test_the_configuration_sizes_a_job() -> None:
    trainer = TrainerConfig(train_limit=1000, epochs=1, mnist_floor=0.5, external=True)
    settings = LearningSettings.from_config(default_rules(), trainer)
    assert (settings.train_limit, settings.epochs, settings.mnist_floor) == (1000, 1, 0.5)
    assert settings.external


def test_the_environment_sizes_a_job() -> None:
    env = {"FTM_TRAIN_LIMIT": "1000", "FTM_TRAIN_EPOCHS": "1", "FTM_GATE_MNIST_FLOOR": "0.5"}
    settings = LearningSettings.from_config(default_rules(), TrainerConfig.from_env(env))
    assert (settings.train_limit, settings.epochs, settings.mnist_floor) == (1000, 1, 0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [("FTM_TRAIN_LIMIT", "many"), ("FTM_TRAIN_EPOCHS", "0"), ("FTM_TRAINER_THREADS", "-2")],
)
def test_a_bad_value_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        TrainerConfig.from_env({name: value})


def test_the_heldout_share_is_one_whole_percentage() -> None:
    rules = with_changes(default_rules(), retrain={"heldout_fraction": 0.15})
    assert LearningSettings.from_config(rules, TrainerConfig()).heldout_percent == 15
    with pytest.raises(SettingsError, match="whole percentage"):
        with_changes(default_rules(), retrain={"heldout_fraction": 0.125})


def test_a_job_runs_with_the_recipe_of_the_server_that_queued_it() -> None:
    queuing = LearningSettings.from_config(default_rules(), TrainerConfig(epochs=1))
    worker = LearningSettings.from_config(default_rules(), TrainerConfig(epochs=5, threads=4))
    followed = worker.following(queuing.recipe())
    assert (followed.epochs, followed.threads) == (1, 4)  # threads are the worker's machine
    assert worker.following({}) == worker  # a job queued before recipes existed
