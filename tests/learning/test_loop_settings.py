"""The learning loop's settings: the rules' retrain section plus the size of a job from the
environment, each bad value refused with its name; a job carries its size to whoever runs it."""

from __future__ import annotations

import pytest

from game_rules.heldout import HELDOUT_PERCENT, percent_of
from game_rules.settings import SettingsError, load_settings, with_changes
from server.learning.loop import LearningSettings


def test_defaults_come_from_the_rules() -> None:
    rules = load_settings()
    settings = LearningSettings.from_env(rules, env={})
    assert settings.retrain_after == rules.retrain.new_verified_threshold
    assert settings.auto_open == rules.retrain.auto_open_next_round
    assert settings.heldout_percent == percent_of(rules.retrain.heldout_fraction) == HELDOUT_PERCENT
    assert (settings.train_limit, settings.threads, settings.mnist_floor) == (None, 1, 0.985)


def test_the_environment_sizes_a_job() -> None:
    env = {"FTM_TRAIN_LIMIT": "1000", "FTM_TRAIN_EPOCHS": "1", "FTM_GATE_MNIST_FLOOR": "0.5"}
    settings = LearningSettings.from_env(load_settings(), env=env)
    assert (settings.train_limit, settings.epochs, settings.mnist_floor) == (1000, 1, 0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [("FTM_TRAIN_LIMIT", "many"), ("FTM_TRAIN_EPOCHS", "0"), ("FTM_TRAINER_THREADS", "-2")],
)
def test_a_bad_value_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        LearningSettings.from_env(load_settings(), env={name: value})


def test_the_heldout_share_is_one_whole_percentage() -> None:
    rules = with_changes(load_settings(), retrain={"heldout_fraction": 0.15})
    assert LearningSettings.from_env(rules, env={}).heldout_percent == 15
    with pytest.raises(SettingsError, match="whole percentage"):
        with_changes(load_settings(), retrain={"heldout_fraction": 0.125})


def test_a_job_runs_with_the_recipe_of_the_server_that_queued_it() -> None:
    queuing = LearningSettings.from_env(load_settings(), env={"FTM_TRAIN_EPOCHS": "1"})
    worker = LearningSettings.from_env(
        load_settings(), env={"FTM_TRAIN_EPOCHS": "5", "FTM_TRAINER_THREADS": "4"}
    )
    followed = worker.following(queuing.recipe())
    assert (followed.epochs, followed.threads) == (1, 4)  # threads are the worker's machine
    assert worker.following({}) == worker  # a job queued before recipes existed
