"""Retraining the same round twice gives the same model, whatever order the drawings arrived in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_dirs import trained_data_dir
from learning_helpers import FOOLINGS, READ_RIGHT, play_round

from server.config import DataLayout
from server.learning.data import PlayerDrawings, player_drawings
from server.learning.jobs.job import TrainingJob
from server.learning.jobs.report import ResultMessage
from server.learning.recipes import DEFAULT_RECIPE
from server.mnist import Mnist
from server.serving.model_files import read_card, weights_path_for
from server.training.worker_main import run_job


class Silent:
    def send(self, message: object) -> None:
        pass


def retrain(data_dir: Path, drawings: PlayerDrawings) -> ResultMessage:
    folder = data_dir / "training"
    job = TrainingJob(
        data_dir=str(data_dir),
        parent="v1",
        extra_path=str(drawings.train.save(folder / "train.npz")),
        heldout_path=str(drawings.heldout.save(folder / "heldout.npz")),
        epochs=1,
        train_limit=1000,
        test_limit=500,
        seed=3,
    )
    return run_job(job, Silent())  # type: ignore[arg-type]


def test_the_same_round_retrained_twice_gives_the_same_model(
    tmp_path: Path, trained_model: Path, mnist: Mnist
) -> None:
    indices = [*FOOLINGS, *READ_RIGHT]
    shuffled = [indices[i] for i in np.random.default_rng(1).permutation(len(indices))]
    runs = []
    for name, order in (("first", indices), ("second", shuffled)):
        data_dir = trained_data_dir(tmp_path / name, trained_model)
        database_url = DataLayout(data_dir).database_url
        play_round(database_url, mnist, order)
        drawings = player_drawings(database_url, 20)
        runs.append((data_dir, drawings, retrain(data_dir, drawings)))
    (dir_a, drawings_a, a), (_, drawings_b, b) = runs

    assert drawings_a.counts() == drawings_b.counts()
    assert drawings_a.counts()["heldout"] > 0 and drawings_a.counts()["read_right_heldout"] > 0
    np.testing.assert_array_equal(drawings_a.train.images, drawings_b.train.images)
    np.testing.assert_array_equal(drawings_a.heldout.labels, drawings_b.heldout.labels)

    weights_a = torch.load(weights_path_for(Path(a.model_path)), weights_only=True)
    weights_b = torch.load(weights_path_for(Path(b.model_path)), weights_only=True)
    assert weights_a.keys() == weights_b.keys()
    parent = torch.load(weights_path_for(DataLayout(dir_a).model_path("v1")), weights_only=True)
    assert any(not torch.equal(weights_a[k], parent[k]) for k in parent)  # it did train
    assert max(float((weights_a[k] - weights_b[k]).abs().max()) for k in weights_a) <= 1e-6

    assert a.mnist_test_accuracy == b.mnist_test_accuracy
    checks_a = {c["name"]: c["value"] for c in a.gate["checks"]}
    checks_b = {c["name"]: c["value"] for c in b.gate["checks"]}
    assert {"mnist_accuracy", "read_right", "heldout_round_1"} <= checks_a.keys()
    assert checks_a == checks_b

    card_a, card_b = read_card(Path(a.card_path)), read_card(Path(b.card_path))
    assert (
        card_a.training
        == card_b.training
        == {
            "mnist_train": 1000,
            "extra": drawings_a.counts()["train"],
            "replay": drawings_a.counts()["read_right_train"],
            "mnist_test": 500,
        }
    )
    assert card_a.metrics["recipe"] == DEFAULT_RECIPE
    assert card_a.metrics["config"]["seed"] == 3
    assert card_a.model_index == card_b.model_index


@pytest.mark.parametrize("count", [1, 2, 4])
def test_a_handful_of_drawings_is_never_all_held_out(
    tmp_path: Path, mnist: Mnist, count: int
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    play_round(DataLayout(data_dir).database_url, mnist, list(FOOLINGS)[:count])
    drawings = player_drawings(DataLayout(data_dir).database_url, 20)
    assert drawings.counts()["train"] == count
    assert drawings.counts()["heldout"] == 0
