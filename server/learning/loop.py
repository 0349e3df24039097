"""The learning loop, server side: verified drawings → training job → gate → swap → next round.

    learning = Learning(game, LearningSettings.from_config(rules, settings.trainer))
    await learning.start()                 # registers the models on disk, starts the auto trigger
    job = await learning.launch("admin")   # TrainerBusy if one is queued or runs; returns at once
    (await learning.status()).public()     # live progress for GET /api/admin/trainer

One job at a time (server/learning/jobs/runner.py runs it). By default this server runs it, in a
separate process (server/learning/jobs/) with its CPU threads capped and the lowest CPU priority, so
serving keeps the CPU and the event loop only relays progress lines. With `FTM_TRAINER=external`
it only queues the job in the database and `fool-the-model trainer` (server/learning/jobs/worker.py)
runs it, on any machine. Either way the job's row carries a heartbeat, the progress and a cancel
request, so every server process shows and cancels it alike, and a job whose trainer went
silent for `heartbeat_timeout` is failed (by the automatic trigger's periodic look).

When the candidate passes the gate and the job should open the next round,
`Game.create_round(version, open_now=True)` swaps the predictor atomically, moves the old round
to closing (its pending claims still settle) and pushes `round` to every client (the worker
opens the round in the database and publishes `round`). A rejected candidate, a crash or a
cancel leave the serving model alone; the reason is kept on the job and, for a rejected
candidate, in the registry's gate verdict.

The automatic trigger checks every few seconds whether `retrain.new_verified_threshold` drawings
were verified since the last job started, and launches a job that opens the next round itself
or leaves the candidate for an admin (`retrain.auto_open_next_round`). Several server processes
queue one job for the same drawings: a job starts only if the newest job is still the one the
decision was based on, and at most one is queued or running (a unique index).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from game_rules.rounds import should_retrain
from server.learning.chart import heldout_accuracy, model_metrics
from server.learning.data import player_drawings, round_stats, verified_count
from server.learning.jobs.process import TrainerProcess
from server.learning.jobs.queue import JobQueue, JobRow, JobRunning
from server.learning.jobs.runner import (
    TRAINER_COMMAND,
    JobRun,
    JobStatus,
    LearningSettings,
    worker_name,
)
from server.play.game import Game
from server.serving.model_store import ModelStore
from server.storage.sync import connect

__all__ = [
    "JobStatus",
    "Learning",
    "LearningSettings",
    "NoJobRunning",
    "TrainerBusy",
]

log = logging.getLogger(__name__)


class TrainerBusy(RuntimeError):
    """A training job is already queued or running."""


class NoJobRunning(RuntimeError):
    """Cancel, with nothing to cancel."""


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
        self.model_store = ModelStore(game.layout)
        self.job_queue = JobQueue(game.layout)
        self.job: JobStatus | None = None  # the job this process runs, else the last one seen
        self._run: JobRun | None = None
        self._task: asyncio.Task[JobStatus] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._launching = False
        self._heldout: HeldoutCache | None = None
        self._metrics_lock = asyncio.Lock()

    @property
    def _trainer(self) -> TrainerProcess | None:
        """The trainer process of the job this process runs (tests kill it)."""
        return self._run.trainer if self._run is not None else None

    @property
    def running(self) -> bool:
        """This process is starting or running a job (in-process trainer)."""
        return self._launching or (self._task is not None and not self._task.done())

    async def start(self) -> None:
        await asyncio.to_thread(self.model_store.sync)
        await self._fail_stale()
        await self.status()
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._run is not None and self.running:
            self._run.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _fail_stale(self) -> None:
        """A job whose trainer (this server before a restart, another server, a worker) stopped
        writing heartbeats is failed; a live one elsewhere is left alone."""
        stale = await asyncio.to_thread(
            self.job_queue.fail_stale_jobs, self.settings.heartbeat_timeout
        )
        if stale:
            log.warning("marked %d silent training job(s) as failed", stale)

    # Jobs

    async def launch(
        self, trigger: str = "admin", open_next: bool = True, after: int | None = None
    ) -> JobStatus:
        """Start a job fine-tuning the serving model on every verified drawing (queue it, with
        `FTM_TRAINER=external`); return at once. `after`: only if the newest job is still that
        one (the automatic trigger decided on it)."""
        if self.running:
            running = f" (#{self.job.id})" if self.job and self.job.state == "running" else ""
            raise TrainerBusy(
                f"A training job{running} is already running; wait for it, or cancel it with "
                "POST /api/admin/trainer/cancel."
            )
        self._launching = True  # set before the first await: a second launch sees it
        try:
            drawings = await asyncio.to_thread(
                player_drawings, self.layout.database_url, self.settings.heldout_percent
            )
            examples = drawings.counts()
            args = (trigger, self.game.serving_version, drawings.total, examples)
            recipe = self.settings.recipe()
            try:
                if self.settings.external:
                    row = await asyncio.to_thread(
                        lambda: self.job_queue.enqueue_job(
                            *args, open_next=open_next, after=after, recipe=recipe
                        )
                    )
                else:
                    row = await asyncio.to_thread(
                        lambda: self.job_queue.start_job(
                            *args,
                            open_next=open_next,
                            worker=worker_name(),
                            after=after,
                            recipe=recipe,
                        )
                    )
            except JobRunning as error:  # this or another server process has one
                raise TrainerBusy(
                    f"{error} Wait for it, or cancel it with POST /api/admin/trainer/cancel."
                ) from None
            if self.settings.external:
                self.job = JobStatus.from_row(row)
                self.job.epochs = self.settings.epochs
                log.info("training job queued", extra={"job": row.id, "trigger": trigger})
                return self.job
            run = JobRun(
                self.layout,
                self.settings,
                self.model_store,
                self.job_queue,
                row,
                self._open_round,
                drawings=drawings,
                command=TRAINER_COMMAND,
            )
            self.job, self._run = run.status, run
            try:
                await run.prepare()
            except Exception as error:
                run.status.state = run.status.outcome = "failed"
                run.status.error = str(error)
                await asyncio.to_thread(
                    self.job_queue.finish_job, row.id, "failed", str(error), None
                )
                raise
            self._task = asyncio.create_task(self._run_job(run))
        finally:
            self._launching = False
        log.info("training job started", extra={"job": row.id, "trigger": trigger})
        return run.status

    async def _run_job(self, run: JobRun) -> JobStatus:
        status = await run.run()
        self._heldout = None
        return status

    async def _open_round(self, version: str) -> int:
        opened = await self.game.create_round(version, open_now=True)
        return opened.number

    async def status(self) -> JobStatus | None:
        """The newest job: the one this process runs (live, with the gate's details), else as
        the database has it — queued, running elsewhere (progress from its heartbeats), or
        finished."""
        rows = await asyncio.to_thread(self.job_queue.jobs, 1)
        if not rows:
            return None
        if self._run is not None and self._run.status.id == rows[0].id:
            self.job = self._run.status
        else:
            self.job = await asyncio.to_thread(self._status_of, rows[0])
        return self.job

    def _status_of(self, row: JobRow) -> JobStatus:
        model = self.model_store.model(row.version) if row.version else None
        status = JobStatus.from_row(row, model.gate if model else None)
        if not status.epochs:
            status.epochs = self.settings.epochs
        return status

    async def cancel(self) -> JobStatus:
        """Cancel the queued or running job, whichever process runs it."""
        if self.running and self._run is not None:
            self._run.cancel()
            return self._run.status
        row = await asyncio.to_thread(self.job_queue.request_cancel)
        if row is None:
            raise NoJobRunning("No training job is queued or running.")
        return await asyncio.to_thread(self._status_of, row)

    # The automatic trigger

    def _new_verified(self) -> tuple[int, int | None]:
        """Verified drawings since the newest job started, and that job's id."""
        jobs = self.job_queue.jobs(1)
        with connect(self.layout.database_url) as db:
            total = verified_count(db)
        newest = jobs[0] if jobs else None
        if newest is None:
            return total, None
        return total - newest.verified_seen, newest.id

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            if self.running:
                continue
            try:
                await self._fail_stale()
                new, newest = await asyncio.to_thread(self._new_verified)
                # Negative only if the database went back to older data: nothing new, then.
                if should_retrain(max(new, 0), self.settings.retrain_after):
                    await self.launch("automatic", open_next=self.settings.auto_open, after=newest)
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
            models = self.model_store.models()
            rounds = round_stats(self.layout.database_url)
            with connect(self.layout.database_url) as db:
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
                percent = self.settings.heldout_percent
                drawings = player_drawings(self.layout.database_url, percent)
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
