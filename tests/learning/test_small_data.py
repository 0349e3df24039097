"""Too few drawings to learn from: the retrain leaves them out and the admin reads why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from learning_helpers import FOOLINGS, READ_RIGHT, play_round

from server.config import DataLayout
from server.learning.data import player_drawings
from server.learning.jobs.examples import ExampleSet
from server.learning.jobs.queue import JobQueue
from server.learning.jobs.runner import JobRun, LearningSettings, small_data_note
from server.mnist import Mnist
from server.serving.model_store import ModelStore


def prepared(database_url: str, tmp_path: Path, minimum: int) -> tuple[JobRun, Path]:
    layout = DataLayout(tmp_path / "data", database_url)
    settings = LearningSettings(
        retrain_after=1, auto_open=False, heldout_percent=20, min_train_drawings=minimum
    )
    queue = JobQueue(layout)
    drawings = player_drawings(database_url, 20)
    row = queue.start_job(
        "admin", "v1", drawings.total, drawings.counts(), recipe=settings.recipe()
    )

    async def no_round(version: str) -> int:
        raise AssertionError("no round opens in this test")

    run = JobRun(layout, settings, ModelStore(layout), queue, row, no_round)
    asyncio.run(run.prepare())
    return run, layout.root / "training" / f"job-{row.id}"


def test_with_fewer_foolings_than_the_minimum_the_retrain_uses_no_player_drawings(
    database_url: str, tmp_path: Path, mnist: Mnist
) -> None:
    play_round(database_url, mnist, [*list(FOOLINGS)[:12], *list(READ_RIGHT)[:5]])
    run, folder = prepared(database_url, tmp_path, minimum=20)

    counts = run.status.examples
    assert counts["train"] + counts["heldout"] == 12 and counts["heldout"] >= 1
    assert len(ExampleSet.load(folder / "train.npz")) == 0
    heldout = ExampleSet.load(folder / "heldout.npz")
    assert len(heldout.foolings()) == counts["heldout"]  # the gate still judges with them
    assert run.status.note == (
        f"Only {counts['train']} verified fooling(s) to train on ({counts['heldout']} more held "
        "out to judge the model): a retrain learns from the players' drawings from 20 on, so "
        "this one trained on MNIST alone. Let the round run until more claims are verified, "
        "then retrain."
    )
    assert run.status.public()["note"] == run.status.note


def test_from_the_minimum_on_the_retrain_learns_from_every_training_drawing(
    database_url: str, tmp_path: Path, mnist: Mnist
) -> None:
    play_round(database_url, mnist, [*list(FOOLINGS)[:12], *list(READ_RIGHT)[:5]])
    run, folder = prepared(database_url, tmp_path, minimum=5)
    train = ExampleSet.load(folder / "train.npz")
    assert len(train.foolings()) == run.status.examples["train"] >= 5
    assert len(train.read_right()) == run.status.examples["read_right_train"]
    assert run.status.note is None


@pytest.mark.parametrize(("train", "note"), [(0, True), (19, True), (20, False), (500, False)])
def test_the_note_appears_below_the_minimum_only(train: int, note: bool) -> None:
    assert (small_data_note({"train": train, "heldout": 3}, 20) is not None) is note
    assert small_data_note({"train": train}, None) is None  # a job from before the minimum
