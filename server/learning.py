"""The learning loop, server side: verified drawings → training job → gate → swap → next round.

    learning = Learning(game, LearningSettings.from_env(rules))
    await learning.start()                 # registers the models on disk, starts the auto trigger
    job = await learning.launch("admin")   # TrainerBusy if one runs; returns at once
    learning.job.public()                  # live progress for GET /api/admin/trainer

One job at a time, in a separate process (server/trainer/) with its CPU threads capped and the
lowest CPU priority, so serving keeps the CPU and the event loop only relays progress lines.
When the candidate passes the gate and the job should open the next round,
`Game.create_round(version, open_now=True)` swaps the predictor atomically, moves the old round
to closing (its pending claims still settle) and pushes `round` to every client. A rejected
candidate, a crash or a cancel leave the serving model alone; the reason is kept on the job
(memory and database) and, for a rejected candidate, in the registry's gate verdict.

The automatic trigger checks every few seconds whether `retrain.new_verified_threshold` drawings
were verified since the last job started, and launches a job that opens the next round itself
or leaves the candidate for an admin (`retrain.auto_open_next_round`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from game_rules.heldout import percent_of
from game_rules.settings import RuleSettings
from server.game import Game, RoundError
from server.gate import GateSettings
from server.learning_data import round_stats, verified_count, verified_drawings
from server.model_metrics import heldout_accuracy, model_metrics
from server.models import read_card
from server.registry import JobRow, JobRunning, Registry, connect
from server.trainer.job import TrainingJob
from server.trainer.process import WORKER_COMMAND, JobOutcome, TrainerProcess
from server.trainer.protocol import ProgressMessage

log = logging.getLogger(__name__)

# Environment variables that size a job, and the LearningSettings field each one sets.
SETTINGS_ENV: dict[str, tuple[str, type]] = {
    "FTM_TRAIN_EPOCHS": ("epochs", int),
    "FTM_TRAIN_LIMIT": ("train_limit", int),
    "FTM_TEST_LIMIT": ("test_limit", int),
    "FTM_GATE_MNIST_FLOOR": ("mnist_floor", float),
    "FTM_TRAINER_THREADS": ("threads", int),
    "FTM_TRAINER_TIMEOUT": ("timeout_seconds", float),
    "FTM_RETRAIN_POLL_SECONDS": ("poll_seconds", float),
}


# The trainer runs under SCHED_IDLE (Linux `chrt --idle`): it gets only CPU time nothing else
# wants, so serving keeps its latency and the training just takes longer. `nice -n 19` was not
# enough: on two loaded cores it still cost live guesses 5× their p99
# (bench/load_while_training.py).
TRAINER_COMMAND = (
    ("chrt", "--idle", "0", *WORKER_COMMAND) if shutil.which("chrt") else WORKER_COMMAND
)


class TrainerBusy(RuntimeError):
    """A training job is already running."""


class NoJobRunning(RuntimeError):
    """Cancel, with nothing to cancel."""


@dataclass(frozen=True)
class LearningSettings:
    """The rules' retrain section plus how big a job is; `from_env` reads `SETTINGS_ENV`
    (tests and small deployments make a tiny job with them)."""

    retrain_after: int  # retrain.new_verified_threshold
    auto_open: bool  # retrain.auto_open_next_round
    heldout_percent: int  # retrain.heldout_fraction, as a percentage
    epochs: int = 2
    train_limit: int | None = None  # first N MNIST training digits (None: all)
    test_limit: int | None = None  # first N MNIST test digits for the gate (None: all)
    mnist_floor: float = GateSettings.mnist_floor
    threads: int = 1
    timeout_seconds: float = 3600.0
    poll_seconds: float = 5.0  # how often the automatic trigger looks

    @classmethod
    def from_env(cls, rules: RuleSettings, env: Mapping[str, str] = os.environ) -> LearningSettings:
        base = cls(
            retrain_after=rules.retrain.new_verified_threshold,
            auto_open=rules.retrain.auto_open_next_round,
            heldout_percent=percent_of(rules.retrain.heldout_fraction),
        )
        values: dict[str, Any] = {}
        for name, (attribute, kind) in SETTINGS_ENV.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                values[attribute] = kind(raw)
            except ValueError:
                raise ValueError(f"${name} must be {kind.__name__}, not {raw!r}") from None
            if values[attribute] < 0 or (values[attribute] == 0 and attribute != "mnist_floor"):
                raise ValueError(f"${name} must be positive, not {raw!r}")
        return dataclasses.replace(base, **values)


@dataclass
class JobStatus:
    """One job as the admin console sees it. `state` uses the console's words: running, then
    succeeded (passed the gate), failed (rejected by the gate, or no candidate) or cancelled;
    `outcome` says which of passed/rejected/failed/cancelled it was."""

    id: int
    trigger: str
    parent: str | None
    examples: dict[str, int]
    state: str = "running"
    outcome: str | None = None
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    eta_seconds: float | None = None
    version: str | None = None
    gate: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    opened_round: int | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> JobStatus:
        outcome = None if row.state == "running" else row.state
        return cls(
            id=row.id,
            trigger=row.trigger,
            parent=row.parent,
            examples=row.examples,
            state=_console_state(outcome),
            outcome=outcome,
            version=row.version,
            error=None if row.state == "passed" else row.reason,
        )

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _console_state(outcome: str | None) -> str:
    return {None: "running", "passed": "succeeded", "cancelled": "cancelled"}.get(outcome, "failed")


HELDOUT_MAX_AGE = 60.0  # seconds


@dataclass(frozen=True)
class HeldoutCache:
    versions: tuple[str, ...]
    verified: int
    measured: float  # time.monotonic()
    accuracies: dict[str, dict[str, float]]  # version → round number → accuracy


class Learning:
    def __init__(self, game: Game, settings: LearningSettings) -> None:
        self.game = game
        self.layout = game.layout
        self.settings = settings
        self.registry = Registry(game.layout)
        self.job: JobStatus | None = None  # the running job, else the last one
        self._trainer: TrainerProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._launching = False
        self._heldout: HeldoutCache | None = None
        self._metrics_lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._launching or (self._task is not None and not self._task.done())

    async def start(self) -> None:
        await asyncio.to_thread(self.registry.sync)
        stale = await asyncio.to_thread(
            self.registry.fail_running_jobs, "the server stopped while the job ran"
        )
        if stale:
            log.warning("marked %d interrupted training job(s) as failed", stale)
        jobs = await asyncio.to_thread(self.registry.jobs, 1)
        self.job = JobStatus.from_row(jobs[0]) if jobs else None
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._trainer is not None and self.running:
            self._trainer.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # Jobs

    async def launch(self, trigger: str = "admin", open_next: bool = True) -> JobStatus:
        """Start a job fine-tuning the serving model on every verified drawing; return at once."""
        if self.running:
            running = f" (#{self.job.id})" if self.job and self.job.state == "running" else ""
            raise TrainerBusy(
                f"A training job{running} is already running; wait for it, or cancel it with "
                "POST /api/admin/trainer/cancel."
            )
        self._launching = True  # set before the first await: a second launch sees it
        try:
            status, trainer = await self._prepare(trigger)
        finally:
            self._launching = False
        self.job, self._trainer = status, trainer
        self._task = asyncio.create_task(self._run(status, trainer, open_next))
        log.info("training job started", extra={"job": status.id, "trigger": trigger})
        return status

    async def _prepare(self, trigger: str) -> tuple[JobStatus, TrainerProcess]:
        s = self.settings
        parent = self.game.serving_version
        drawings = await asyncio.to_thread(
            verified_drawings, self.layout.database, s.heldout_percent
        )
        examples = {"train": len(drawings.train), "heldout": len(drawings.heldout)}
        try:
            row = await asyncio.to_thread(
                self.registry.start_job, trigger, parent, drawings.total, examples
            )
        except JobRunning as error:  # another server process runs one
            raise TrainerBusy(str(error)) from None
        status = JobStatus(row.id, trigger, parent, examples, epochs=s.epochs)
        folder = self.layout.root / "training" / f"job-{row.id}"
        try:
            extra = await asyncio.to_thread(drawings.train.save, folder / "train.npz")
            heldout = await asyncio.to_thread(drawings.heldout.save, folder / "heldout.npz")
        except OSError as error:
            status.outcome, status.state = "failed", "failed"
            status.error = f"cannot write the training data to {folder}: {error}"
            await asyncio.to_thread(self.registry.finish_job, row.id, "failed", status.error, None)
            self.job = status
            raise
        job = TrainingJob(
            data_dir=str(self.layout.root),
            parent=parent,
            extra_path=str(extra),
            heldout_path=str(heldout),
            threads=s.threads,
            epochs=s.epochs,
            train_limit=s.train_limit,
            test_limit=s.test_limit,
            gate=GateSettings(mnist_floor=s.mnist_floor),
        )
        trainer = TrainerProcess(
            job, folder / "job.json", command=TRAINER_COMMAND, timeout_seconds=s.timeout_seconds
        )
        return status, trainer

    def cancel(self) -> JobStatus:
        training = self._task is not None and not self._task.done()
        if not training or self._trainer is None or self.job is None:
            raise NoJobRunning("No training job is running.")
        self._trainer.cancel()
        return self.job

    async def _run(self, status: JobStatus, trainer: TrainerProcess, open_next: bool) -> None:
        def progress(message: ProgressMessage) -> None:
            status.epoch, status.epochs = message.epoch, message.epochs
            status.step, status.steps = message.step, message.steps
            status.loss, status.eta_seconds = message.loss, message.eta_seconds

        outcome = await trainer.run(progress)
        try:
            await self._finish(status, outcome, open_next)
        except Exception as error:  # never leave a job 'running' behind
            log.exception("finishing training job %d failed", status.id)
            status.outcome, status.error = "failed", f"after training: {error}"
        reason = status.error or (outcome.reason if status.outcome == "passed" else "")
        await asyncio.to_thread(
            self.registry.finish_job, status.id, status.outcome or "failed", reason, status.version
        )
        self._heldout = None
        # Last: whoever sees the job finished can launch the next one at once.
        status.state = _console_state(status.outcome)
        log.info(
            "training job finished",
            extra={"job": status.id, "outcome": status.outcome, "reason": reason},
        )

    async def _finish(self, status: JobStatus, outcome: JobOutcome, open_next: bool) -> None:
        status.outcome = outcome.status
        if outcome.result is None:
            status.error = outcome.reason
            return
        status.version, status.gate = outcome.result.version, outcome.result.gate
        card = await asyncio.to_thread(read_card, Path(outcome.result.card_path))
        await asyncio.to_thread(self.registry.register, card)
        if outcome.status != "passed":
            status.error = outcome.reason
            return
        if open_next:
            try:
                opened = await self.game.create_round(card.version, open_now=True)
            except RoundError as error:
                status.outcome, status.error = "failed", f"{card.version} passed the gate: {error}"
                return
            status.opened_round = opened.number

    # The automatic trigger

    def _new_verified(self) -> int:
        jobs = self.registry.jobs(1)
        with connect(self.layout.database) as db:
            total = verified_count(db)
        return total - (jobs[0].verified_seen if jobs else 0)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            if self.running:
                continue
            try:
                if await asyncio.to_thread(self._new_verified) >= self.settings.retrain_after:
                    await self.launch("automatic", open_next=self.settings.auto_open)
            except TrainerBusy:
                pass
            except Exception:
                log.exception("the automatic retraining trigger failed")

    # Metrics

    async def metrics(self) -> list[dict[str, Any]]:
        """Per-model chart data; the counts are read fresh. Held-out accuracies are measured
        again when the models change, or when the verified drawings changed and the last
        measurement is older than HELDOUT_MAX_AGE (a public endpoint must not make the server
        evaluate every model on every request). One measurement at a time."""

        def compute() -> list[dict[str, Any]]:
            models = self.registry.models()
            rounds = round_stats(self.layout.database)
            with connect(self.layout.database) as db:
                verified = verified_count(db)
            versions = tuple(m.version for m in models)
            cached = self._heldout
            stale = (
                cached is None
                or cached.versions != versions
                or (
                    cached.verified != verified
                    and time.monotonic() - cached.measured > HELDOUT_MAX_AGE
                )
            )
            if stale:
                drawings = verified_drawings(self.layout.database, self.settings.heldout_percent)
                accuracies = {
                    m.version: heldout_accuracy(self.layout, m.version, drawings.heldout)
                    for m in models
                    if m.accepted
                }
                cached = self._heldout = HeldoutCache(
                    versions, verified, time.monotonic(), accuracies
                )
            assert cached is not None
            return model_metrics(models, rounds, cached.accuracies)

        async with self._metrics_lock:
            return await asyncio.to_thread(compute)
