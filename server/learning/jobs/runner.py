"""Run one training job from its database row to the end, wherever it runs: inside a server
(`FTM_TRAINER` unset, server/learning/loop.py) or in the trainer worker
(server/learning/jobs/worker.py).

    run = JobRun(layout, settings, model_store, job_queue, row, open_round)
    status = await run.run()          # run.cancel() from anywhere; never raises

The job's verified drawings are read from the database and handed to the trainer process
(`TrainerProcess`: torch lives there, never here). Every `HEARTBEAT_SECONDS` the run writes a
heartbeat and the live progress to the job row and reads back whether a cancel was requested,
so the admin API of any server process can show and cancel it. A candidate is registered with
its files (server/serving/model_store.py); one that passed the gate opens the next round through
`open_round` when the job asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from game_rules.heldout import learns_from_players, percent_of
from game_rules.settings import RuleSettings
from server.config import DataLayout, TrainerConfig
from server.learning.data import PlayerDrawings, player_drawings
from server.learning.gate import GateSettings
from server.learning.jobs.examples import ExampleSet
from server.learning.jobs.job import TrainingJob
from server.learning.jobs.process import WORKER_COMMAND, JobOutcome, TrainerProcess
from server.learning.jobs.queue import JobQueue, JobRow
from server.learning.jobs.report import ProgressMessage
from server.learning.recipes import RETRAIN_EPOCHS
from server.serving.model_files import read_card
from server.serving.model_store import ModelStore

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0

# The trainer runs under SCHED_IDLE (Linux `chrt --idle`): it gets only CPU time nothing else
# wants, so serving keeps its latency and the training just takes longer. `nice -n 19` was not
# enough: on two loaded cores it still cost live guesses 5× their p99
# (bench/load_while_training.py).
TRAINER_COMMAND = (
    ("chrt", "--idle", "0", *WORKER_COMMAND) if shutil.which("chrt") else WORKER_COMMAND
)


# What a job is: set by the server that starts or queues it (its settings), written on the job's
# row and followed by whoever runs it. Threads, timeout and polling stay the runner's own.
RECIPE_FIELDS = (
    "epochs",
    "train_limit",
    "test_limit",
    "mnist_floor",
    "heldout_percent",
    "min_train_drawings",
)


def worker_name() -> str:
    """Who runs a job, as recorded on its row: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LearningSettings:
    """The rules' retrain section plus how big a job is; `from_config` applies what the
    deployment set (server/config.py `TrainerConfig`: tests and small deployments make a tiny
    job with it) and whether an external trainer runs the jobs."""

    retrain_after: int  # retrain.new_verified_threshold
    auto_open: bool  # retrain.auto_open_next_round
    heldout_percent: int  # retrain.heldout_fraction, as a percentage
    min_train_drawings: int = 20  # retrain.min_train_drawings
    epochs: int = RETRAIN_EPOCHS
    train_limit: int | None = None  # first N MNIST training digits (None: all)
    test_limit: int | None = None  # first N MNIST test digits for the gate (None: all)
    mnist_floor: float = GateSettings.mnist_floor
    threads: int = 1
    timeout_seconds: float = 3600.0
    poll_seconds: float = 5.0  # how often the automatic trigger looks
    heartbeat_timeout: float = 60.0  # a running job silent this long is failed
    external: bool = False  # servers queue jobs; `fool-the-model trainer` runs them

    @classmethod
    def from_config(cls, rules: RuleSettings, trainer: TrainerConfig) -> LearningSettings:
        base = cls(
            retrain_after=rules.retrain.new_verified_threshold,
            auto_open=rules.retrain.auto_open_next_round,
            heldout_percent=percent_of(rules.retrain.heldout_fraction),
            min_train_drawings=rules.retrain.min_train_drawings,
            external=trainer.external,
        )
        return dataclasses.replace(base, **trainer.overrides())

    def recipe(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECIPE_FIELDS}

    def following(self, recipe: Mapping[str, Any]) -> LearningSettings:
        """These settings with a job's recipe in place of their own (rows from before recipes
        have none)."""
        return dataclasses.replace(self, **{n: recipe[n] for n in RECIPE_FIELDS if n in recipe})


PROGRESS_FIELDS = ("phase", "epoch", "epochs", "step", "steps", "loss", "eta_seconds")


@dataclass
class JobStatus:
    """One job as the admin console sees it. `state` uses the console's words: queued, running,
    then succeeded (passed the gate), failed (rejected by the gate, or no candidate) or
    cancelled; `outcome` says which of passed/rejected/failed/cancelled it was."""

    id: int
    trigger: str
    parent: str | None
    examples: dict[str, int]
    state: str = "running"
    outcome: str | None = None
    phase: str | None = None  # loading, training, exporting, gating (jobs/report.py)
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
    worker: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: JobRow, gate: dict[str, Any] | None = None) -> JobStatus:
        outcome = None if row.state in ("queued", "running") else row.state
        status = cls(
            id=row.id,
            trigger=row.trigger,
            parent=row.parent,
            examples=row.examples,
            state=console_state(row.state),
            outcome=outcome,
            version=row.version,
            gate=gate or {},
            error=None if row.state in ("queued", "running", "passed") else row.reason,
            opened_round=row.opened_round,
            worker=row.worker,
            recipe=row.recipe,
        )
        status.progress(row.progress)
        return status

    def progress(self, values: Mapping[str, Any]) -> None:
        for name in PROGRESS_FIELDS:
            if name in values:
                setattr(self, name, values[name])

    @property
    def note(self) -> str | None:
        """Why the job learnt nothing from the players, if it had too few drawings."""
        return small_data_note(self.examples, self.recipe.get("min_train_drawings"))

    def public(self) -> dict[str, Any]:
        return {**self.__dict__, "note": self.note}


def small_data_note(examples: Mapping[str, int], minimum: int | None) -> str | None:
    """What the admin reads when a job had too few foolings to learn from."""
    train = examples.get("train")
    if minimum is None or train is None or learns_from_players(train, minimum):
        return None
    return (
        f"Only {train} verified fooling(s) to train on ({examples.get('heldout', 0)} more held "
        f"out to judge the model): a retrain learns from the players' drawings from {minimum} "
        "on, so this one trained on MNIST alone. Let the round run until more claims are "
        "verified, then retrain."
    )


def console_state(state: str) -> str:
    """A job row's state in the console's words."""
    return {"passed": "succeeded", "rejected": "failed"}.get(state, state)


OpenRound = Callable[[str], Awaitable[int]]  # version → the number of the round it opened


class JobRun:
    """One job this process took (its row is `running`), run to its end."""

    def __init__(
        self,
        layout: DataLayout,
        settings: LearningSettings,
        model_store: ModelStore,
        job_queue: JobQueue,
        row: JobRow,
        open_round: OpenRound,
        *,
        drawings: PlayerDrawings | None = None,
        command: tuple[str, ...] = TRAINER_COMMAND,
    ) -> None:
        self.layout = layout
        self.settings = settings.following(row.recipe)
        self.model_store = model_store
        self.job_queue = job_queue
        self.row = row
        self.open_round = open_round
        self.status = JobStatus.from_row(row)
        self.status.epochs = self.settings.epochs
        self.trainer: TrainerProcess | None = None
        self._drawings = drawings
        self._command = command
        self._cancelled = False
        self._stop_reason: str | None = None  # set: the job fails with it instead

    def cancel(self, reason: str | None = None) -> None:
        """Stop the job: cancelled, or failed with `reason` (the worker is shutting down)."""
        self._cancelled = True
        self._stop_reason = self._stop_reason or reason
        if self.trainer is not None:
            self.trainer.cancel()

    async def run(self) -> JobStatus:
        status = self.status
        beating = asyncio.create_task(self._heartbeat())
        try:
            try:
                trainer = self.trainer or await self.prepare()
            except Exception as error:
                log.exception("preparing training job %d failed", status.id)
                outcome = JobOutcome("failed", f"cannot prepare the job: {error}")
            else:
                if self._cancelled:
                    trainer.cancel()
                outcome = await trainer.run(self._progress)
            try:
                await self._finish(outcome)
            except Exception as error:  # never leave a job 'running' behind
                log.exception("finishing training job %d failed", status.id)
                status.outcome, status.error = "failed", f"after training: {error}"
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        reason = status.error or (outcome.reason if status.outcome == "passed" else "")
        await asyncio.to_thread(
            self.job_queue.finish_job,
            status.id,
            status.outcome or "failed",
            reason,
            status.version,
            status.opened_round,
        )
        # Last: whoever sees the job finished can launch the next one at once.
        status.state = console_state(status.outcome or "failed")
        log.info(
            "training job finished",
            extra={"job": status.id, "outcome": status.outcome, "reason": reason},
        )
        return status

    async def prepare(self) -> TrainerProcess:
        """Fetch the models, write the drawings for the trainer; `run()` does it if not done."""
        s, status = self.settings, self.status
        # A trainer on another machine gets the parent (and every other version, so the number
        # it gives the candidate is new) from the registry; a server has them already.
        await asyncio.to_thread(self.model_store.fetch_all)
        drawings = self._drawings
        if drawings is None:
            drawings = await asyncio.to_thread(
                player_drawings, self.layout.database_url, s.heldout_percent
            )
        status.examples = drawings.counts()
        too_few = small_data_note(status.examples, s.min_train_drawings) is not None
        train = ExampleSet.of([], []) if too_few else drawings.train
        folder = self.layout.root / "training" / f"job-{status.id}"
        try:
            extra = await asyncio.to_thread(train.save, folder / "train.npz")
            heldout = await asyncio.to_thread(drawings.heldout.save, folder / "heldout.npz")
        except OSError as error:
            raise OSError(f"cannot write the training data to {folder}: {error}") from error
        job = TrainingJob(
            data_dir=str(self.layout.root),
            parent=self.row.parent,
            extra_path=str(extra),
            heldout_path=str(heldout),
            threads=s.threads,
            epochs=s.epochs,
            train_limit=s.train_limit,
            test_limit=s.test_limit,
            gate=GateSettings(mnist_floor=s.mnist_floor),
        )
        self.trainer = TrainerProcess(
            job, folder / "job.json", command=self._command, timeout_seconds=s.timeout_seconds
        )
        return self.trainer

    def _progress(self, message: ProgressMessage) -> None:
        self.status.progress(message.model_dump(exclude={"type", "accuracy"}))

    async def _heartbeat(self) -> None:
        """Tell the database the job lives, with its progress; stop it on a cancel request."""
        status = self.status
        while True:
            progress = {name: getattr(status, name) for name in PROGRESS_FIELDS}
            try:
                stop = await asyncio.to_thread(
                    self.job_queue.heartbeat, status.id, progress, status.examples
                )
            except Exception as error:  # the database is down: the run goes on, and says so
                log.warning("training heartbeat failed", extra={"error": str(error)})
            else:
                if stop and not self._cancelled:
                    log.info("training job cancelled on request", extra={"job": status.id})
                    self.cancel()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _finish(self, outcome: JobOutcome) -> None:
        status = self.status
        status.outcome = outcome.status
        if outcome.status == "cancelled" and self._stop_reason:
            status.outcome, status.error = "failed", self._stop_reason
            return
        if outcome.result is None:
            status.error = outcome.reason
            return
        status.version, status.gate = outcome.result.version, outcome.result.gate
        card = await asyncio.to_thread(read_card, Path(outcome.result.card_path))
        await asyncio.to_thread(self.model_store.register, card)
        if outcome.status != "passed":
            status.error = outcome.reason
            return
        if self.row.open_next:
            try:
                status.opened_round = await self.open_round(card.version)
            except Exception as error:
                status.outcome, status.error = "failed", f"{card.version} passed the gate: {error}"
