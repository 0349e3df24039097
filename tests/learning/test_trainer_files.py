"""The files the server hands the trainer: examples (.npz) and the job (JSON)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.learning.gate import GateSettings
from server.learning.jobs.examples import ExampleFileError, ExampleSet
from server.learning.jobs.job import JobError, TrainingJob


def some_examples(n: int = 6) -> ExampleSet:
    rng = np.random.default_rng(0)
    return ExampleSet.of(
        rng.random((n, 28, 28), dtype=np.float32),
        labels=[i % 10 for i in range(n)],
        weights=np.linspace(0.5, 1.0, n),
        rounds=[1, 1, 2, 2, 2, 3][:n],
        fooled=[i % 3 != 0 for i in range(n)],
    )


def test_examples_round_trip(tmp_path: Path) -> None:
    examples = some_examples()
    loaded = ExampleSet.load(examples.save(tmp_path / "extra.npz"))
    for name in ("images", "labels", "weights", "rounds", "fooled"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(examples, name))
    assert loaded.round_numbers() == [1, 2, 3]
    assert len(loaded.of_round(2)) == 3
    assert len(loaded.foolings()) == 4 and loaded.read_right().labels.tolist() == [0, 3]
    both = loaded + loaded
    assert len(both) == 12 and both.fooled.tolist() == loaded.fooled.tolist() * 2


def test_uint8_images_are_scaled_to_unit_range() -> None:
    examples = ExampleSet.of(np.full((2, 28, 28), 255, np.uint8), labels=[1, 2])
    assert examples.images.dtype == np.float32 and examples.images.max() == 1.0
    assert examples.weights.tolist() == [1.0, 1.0] and examples.rounds.tolist() == [0, 0]
    assert examples.fooled.tolist() == [True, True]  # foolings unless said otherwise


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": [1, 2, 12]}, "digits"),
        ({"labels": [1, 2]}, "one entry per image"),
        ({"weights": [1.0, -1.0, 1.0]}, "weights"),
        ({"weights": [1.0, np.nan, 1.0]}, "weights"),
        ({"images": np.full((3, 28, 28), 2.0, np.float32)}, r"\[0, 1\]"),
        ({"images": np.zeros((3, 28, 27), np.float32)}, r"\[N,28,28\]"),
    ],
)
def test_malformed_examples_are_refused(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "images": np.zeros((3, 28, 28), np.float32),
        "labels": [1, 2, 3],
    }
    arguments.update(change)
    with pytest.raises(ExampleFileError, match=message):
        ExampleSet.of(**arguments)  # type: ignore[arg-type]


def test_a_corrupt_examples_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "extra.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ExampleFileError, match="cannot read"):
        ExampleSet.load(path)
    np.savez(
        path, images=np.zeros((1, 28, 28)), labels=[1], weights=[1.0], rounds=[0], fooled=[True]
    )
    with pytest.raises(ExampleFileError, match="float32"):
        ExampleSet.load(path)


def test_a_job_round_trips(tmp_path: Path) -> None:
    job = TrainingJob(
        data_dir="/data", parent="v3", extra_path="/x.npz", threads=2, gate=GateSettings(0.9)
    )
    assert TrainingJob.load(job.save(tmp_path / "job.json")) == job


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"data_dir": "d", "parent": "3"}', "parent"),
        ('{"data_dir": "d", "threads": 0}', "threads"),
        ('{"data_dir": "d", "epochs": "many"}', "epochs"),
        ('{"data_dir": "d", "surprise": 1}', "surprise"),
        ('{"data_dir": "d", "gate": {"mnist_floor": 1.5}}', "gate"),
        ('{"parent": "v1"}', "data_dir"),
        ("[1, 2", "job"),
    ],
)
def test_an_invalid_job_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job.json"
    path.write_text(text)
    with pytest.raises(JobError, match=message):
        TrainingJob.load(path)


def test_a_missing_job_file_is_a_job_error(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="cannot read"):
        TrainingJob.load(tmp_path / "nope.json")
