"""The real trainer process end to end on a tiny slice: progress, card, gate, cancel, crash."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from data_dirs import new_data_dir
from learning_helpers import install_model

from server.config import DataLayout
from server.learning.gate import GateSettings
from server.learning.jobs.examples import ExampleSet
from server.learning.jobs.job import TrainingJob
from server.learning.jobs.process import WORKER_COMMAND, JobOutcome, TrainerProcess
from server.learning.jobs.report import ProgressMessage
from server.mnist import Mnist
from server.serving.model_files import list_models, read_card, sha256_file, weights_path_for

pytestmark = pytest.mark.slow
Trained = tuple[Path, JobOutcome, list[ProgressMessage]]


def tiny_job(data_dir: Path, **options: Any) -> TrainingJob:
    """A job on a slice: 1000 training digits, one epoch, 500 test digits."""
    return TrainingJob(
        data_dir=str(data_dir), train_limit=1000, test_limit=500, epochs=1, **options
    )


async def run_job(job: TrainingJob, work: Path) -> tuple[JobOutcome, list[ProgressMessage]]:
    progress: list[ProgressMessage] = []
    outcome = await TrainerProcess(job, work / "job.json").run(progress.append)
    return outcome, progress


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, mnist: Mnist
) -> tuple[Path, JobOutcome, list]:
    """v1, trained by the worker on a slice plus 20 extra drawings, judged on 30 held out."""
    data_dir = new_data_dir(tmp_path_factory.mktemp("trained") / "data", mnist=True)
    digits, labels = mnist.test_images[9000:9050], mnist.test_labels[9000:9050]
    extra = ExampleSet.of(digits[:20], labels[:20], weights=[0.8] * 20)
    heldout = ExampleSet.of(digits[20:], labels[20:], rounds=[1] * 30)
    job = tiny_job(
        data_dir,
        extra_path=str(extra.save(data_dir.parent / "extra.npz")),
        heldout_path=str(heldout.save(data_dir.parent / "heldout.npz")),
        gate=GateSettings(mnist_floor=0.0),
    )
    outcome, progress = asyncio.run(run_job(job, data_dir.parent))
    return data_dir, outcome, progress


def test_a_tiny_training_reports_progress_and_a_valid_card(trained: Trained) -> None:
    data_dir, outcome, progress = trained
    assert outcome.status == "passed", outcome
    assert progress, "no progress arrived"
    # Each phase is reported as it begins, in order; the steps only move forward.
    phases = [p.phase for p in progress]
    assert [phase for i, phase in enumerate(phases) if phases.index(phase) == i] == [
        "loading",
        "training",
        "exporting",
        "gating",
    ]
    assert phases == sorted(phases, key=["loading", "training", "exporting", "gating"].index)
    steps = [p.step for p in progress]
    assert steps == sorted(steps) and steps[-1] == progress[-1].steps
    training = [p for p in progress if p.phase == "training"]
    assert all(p.epochs == 1 and p.loss > 0 and p.eta_seconds >= 0 for p in training)

    result = outcome.result
    assert result is not None and result.version == "v1"
    layout = DataLayout(data_dir)
    card = read_card(Path(result.card_path))
    assert card.version == "v1" and card.parent is None
    assert card.sha256 == sha256_file(layout.model_path("v1"))
    assert card.training == {"mnist_train": 1000, "extra": 20, "replay": 0, "mnist_test": 500}
    assert card.gate["passed"] is True and card.gate["reason"] == "all checks passed"
    checks = {check["name"]: check for check in card.gate["checks"]}
    assert list(checks) == [
        "integrity",
        "onnx_parity",
        "mnist_accuracy",
        "mnist_per_class",
        "heldout_round_1",
    ]
    assert checks["onnx_parity"]["value"] <= 1e-4
    assert checks["mnist_accuracy"]["value"] == pytest.approx(card.mnist_test_accuracy, abs=0.01)
    assert "no serving model to compare" in checks["heldout_round_1"]["reason"]
    assert weights_path_for(layout.model_path("v1")).is_file()
    assert [c.version for c in list_models(layout)] == ["v1"]


async def test_a_running_training_can_be_cancelled(trained: Trained) -> None:
    data_dir, _, _ = trained
    before = [c.version for c in list_models(DataLayout(data_dir))]
    job = TrainingJob(data_dir=str(data_dir), parent="v1", train_limit=5000, epochs=50)
    trainer = TrainerProcess(job, data_dir.parent / "cancel.json", grace_seconds=2)
    progress: list[ProgressMessage] = []

    def on_progress(message: ProgressMessage) -> None:
        progress.append(message)
        trainer.cancel()

    outcome = await trainer.run(on_progress)
    assert outcome.status == "cancelled" and outcome.reason == "the training was cancelled"
    assert len(progress) >= 1 and progress[-1].step < progress[-1].steps
    assert [c.version for c in list_models(DataLayout(data_dir))] == before


async def test_unreadable_parent_weights_fail_the_job_with_the_reason(
    data_dir: Path, linear_onnx_model: Callable[..., Path]
) -> None:
    install_model(data_dir, "v1", linear_onnx_model(seed=1))
    weights = weights_path_for(DataLayout(data_dir).model_path("v1"))
    weights.write_bytes(b"definitely not torch weights")
    job = tiny_job(data_dir, parent="v1")
    outcome, progress = await run_job(job, data_dir.parent)
    assert outcome.status == "failed" and [p.phase for p in progress] == ["loading"]
    assert outcome.reason.startswith(f"cannot fine-tune from v1: its weights {weights}")
    assert "unreadable" in outcome.reason and outcome.exit_code == 1


async def test_a_missing_parent_fails_the_job(data_dir: Path) -> None:
    job = tiny_job(data_dir, parent="v7")
    outcome, _ = await run_job(job, data_dir.parent)
    assert outcome.status == "failed"
    assert outcome.reason.startswith("cannot fine-tune from v7:") and "missing" in outcome.reason


def test_an_invalid_job_file_is_reported_on_the_protocol(tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text('{"data_dir": "x", "epochs": 0}')
    done = subprocess.run(
        [sys.executable, "-m", "server.training.worker_main", str(job_file)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 1
    (line,) = done.stdout.decode().splitlines()
    message = json.loads(line)
    assert message["type"] == "error" and "epochs" in message["reason"]


def test_the_trainer_exits_when_its_parent_goes(trained: Trained) -> None:
    data_dir, _, _ = trained
    job_file = TrainingJob(data_dir=str(data_dir), parent="v1", epochs=50).save(
        data_dir.parent / "orphan.json"
    )
    child = subprocess.Popen(
        [*WORKER_COMMAND, str(job_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None
    child.stdin.close()  # what the kernel does when the server dies
    assert child.wait(timeout=60) == 3
    assert child.stdout is not None and b'"result"' not in child.stdout.read()
