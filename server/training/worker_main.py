"""The trainer process: `python -m server.training.worker_main [--exit-with-stdin] JOB.json`.

Reads a `TrainingJob`, trains (fine-tuning from the parent's weights on MNIST plus the extra
drawings; on a GPU when torch sees one, else on the CPU), exports ONNX, runs the gate against
the parent, records the gate on the model card and reports, one JSON line at a time, on stdout
(protocol: server/learning/jobs/report.py). Started by `server.learning.jobs.TrainerProcess`;
runnable by hand too.

Stdout belongs to the protocol: anything else that prints (torch's exporter does) is sent to
stderr. With `--exit-with-stdin` (what `TrainerProcess` passes) the process exits when its stdin
closes — when the server that started it is gone — so a crashed server never leaves a trainer
burning CPU.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from server.config import DataLayout
from server.learning.gate import run_gate
from server.learning.jobs.examples import ExampleSet
from server.learning.jobs.job import TrainingJob
from server.learning.jobs.report import ErrorMessage, ProgressMessage, ResultMessage, encode
from server.learning.recipes import recipe_named
from server.mnist import load_mnist
from server.serving.model_files import card_path_for, weights_path_for, write_card

EXIT_WHEN_ORPHANED = 3
MAX_REASON = 1000


class Reporter:
    """Writes protocol lines to the real stdout, which nothing else may use."""

    def __init__(self, channel: BinaryIO) -> None:
        self.channel = channel

    def send(self, message: ProgressMessage | ResultMessage | ErrorMessage) -> None:
        self.channel.write(encode(message))
        self.channel.flush()


def take_stdout() -> BinaryIO:
    """Keep a private copy of stdout for the protocol and point fd 1 at stderr."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return channel


def exit_when_parent_goes() -> None:
    def watch() -> None:
        # os.read, not sys.stdin: a buffered reader's lock would upset interpreter shutdown.
        while os.read(0, 4096):
            pass
        os._exit(EXIT_WHEN_ORPHANED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_job(job: TrainingJob, reporter: Reporter) -> ResultMessage:
    # The admin console names what the job is doing: each phase is reported as it begins.
    latest = ProgressMessage(phase="loading", epoch=1, epochs=job.epochs, step=0, steps=1)
    reporter.send(latest)
    # Everything that can be wrong with the job's inputs is checked before torch loads (seconds).
    layout = DataLayout(Path(job.data_dir))
    parent_weights = None
    if job.parent is not None:
        parent_weights = weights_path_for(layout.model_path(job.parent))
        if not parent_weights.is_file():
            raise FileNotFoundError(
                f"cannot fine-tune from {job.parent}: {parent_weights} is missing"
            )
    examples = ExampleSet.load(Path(job.extra_path)) if job.extra_path else None
    heldout = ExampleSet.load(Path(job.heldout_path)) if job.heldout_path else None
    mnist = load_mnist(layout.root)

    import torch

    torch.set_num_threads(job.threads)
    if parent_weights is not None:
        check_weights(parent_weights, job.parent)

    from server.training.pipeline import build_model
    from server.training.train import ExtraExample, Progress, TrainConfig

    extra = []
    if examples is not None:
        extra = [
            ExtraExample(image, int(label), float(weight), bool(fooled))
            for image, label, weight, fooled in zip(
                examples.images, examples.labels, examples.weights, examples.fooled, strict=True
            )
        ]
    recipe = recipe_named(job.recipe)
    settings = recipe.training(has_parent=job.parent is not None)
    if job.lr is not None:
        settings["lr"] = job.lr
    config = TrainConfig(
        **settings,
        epochs=job.epochs,
        seed=job.seed,
        train_limit=job.train_limit,
        test_limit=job.test_limit,
        threads=job.threads,
        show_progress=False,
        device="cuda" if torch.cuda.is_available() else "cpu",
    )

    def on_progress(p: Progress) -> None:
        nonlocal latest
        latest = ProgressMessage(
            epoch=p.epoch,
            epochs=p.epochs,
            step=p.step,
            steps=p.steps,
            loss=p.loss,
            accuracy=p.accuracy,
            eta_seconds=max(p.eta_seconds, 0.0),
        )
        reporter.send(latest)
        if p.step == p.steps:  # the last step is always reported; the export comes next
            reporter.send(latest.model_copy(update={"phase": "exporting", "eta_seconds": None}))

    card = build_model(
        layout.root,
        config,
        extra=extra,
        parent=job.parent,
        from_scratch=recipe.from_scratch,
        recipe=job.recipe,
        on_progress=on_progress,
        mnist=mnist,
        heldout=heldout,
    )
    reporter.send(latest.model_copy(update={"phase": "gating", "eta_seconds": None}))
    model_path = layout.model_path(card.version)
    test_n = job.test_limit or len(mnist.test_labels)
    gate = run_gate(
        model_path,
        card,
        mnist_images=mnist.test_images[:test_n],
        mnist_labels=mnist.test_labels[:test_n],
        serving=layout.model_path(job.parent) if job.parent else None,
        heldout=heldout,
        settings=job.gate,
        threads=job.threads,
    )
    card.gate.update(gate.to_dict())
    card_path = card_path_for(model_path)
    write_card(card, card_path)
    return ResultMessage(
        version=card.version,
        card_path=str(card_path),
        model_path=str(model_path),
        mnist_test_accuracy=card.mnist_test_accuracy,
        gate=card.gate,
    )


def check_weights(path: Path, version: str | None) -> None:
    """Fail early, and say so plainly, when the parent's weights cannot be read."""
    import torch

    try:
        torch.load(path, weights_only=True)
    except Exception as exc:  # torch.load raises pickle, zip and runtime errors alike
        raise ValueError(
            f"cannot fine-tune from {version}: its weights {path} are unreadable ({exc})"
        ) from exc


USAGE = "usage: python -m server.training.worker_main [--exit-with-stdin] JOB.json"


def main(argv: list[str]) -> int:
    reporter = Reporter(take_stdout())
    if argv[:1] == ["--exit-with-stdin"]:
        argv = argv[1:]
        exit_when_parent_goes()
    if len(argv) != 1:
        reporter.send(ErrorMessage(reason=USAGE))
        return 2
    try:
        job = TrainingJob.load(Path(argv[0]))
        result = run_job(job, reporter)
    except Exception as exc:  # every failure becomes a reason the admin can read
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, ValueError | OSError):
            reason = f"{type(exc).__name__}: {reason}"
        reporter.send(ErrorMessage(reason=reason[:MAX_REASON]))
        return 1
    reporter.send(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
