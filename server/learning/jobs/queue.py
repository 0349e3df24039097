"""The training-job queue, in the game database (migration 4).

A training job is `queued` (by a server in external-trainer mode), `running` (taken by a trainer,
which writes a heartbeat and its progress every second), then `passed`, `rejected`, `failed` or
`cancelled`. At most one job is queued or running at a time (a unique index), and a trainer takes
a queued job with one conditional UPDATE, so two trainers never take the same job.

Synchronous (server/storage/sync.py, SQLite or PostgreSQL), like the model registry
(server/serving/model_store.py): called directly by the trainer worker, through
`asyncio.to_thread` by the server.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from server.config import DataLayout
from server.serving.model_store import RegistryError
from server.storage.base import Conflict
from server.storage.sync import connect

JOB_STATES = ("queued", "running", "passed", "rejected", "failed", "cancelled")
ACTIVE_STATES = JOB_STATES[:2]
FINAL_STATES = JOB_STATES[2:]


class JobRunning(RegistryError):
    """A training job is already queued or running."""


@dataclass(frozen=True)
class JobRow:
    id: int
    state: str
    trigger: str
    parent: str | None
    version: str | None
    verified_seen: int
    examples: dict[str, int]
    reason: str | None
    open_next: bool
    queued_at: float
    started_at: float | None
    finished_at: float | None
    worker: str | None
    heartbeat_at: float | None
    progress: dict[str, Any]
    cancel_requested: bool
    opened_round: int | None
    recipe: dict[str, Any]  # the job as its server asked for it (runner.RECIPE_FIELDS)


_JOB_COLUMNS = (
    "id, state, trigger, parent, version, verified_seen, examples, reason, open_next, queued_at,"
    " started_at, finished_at, worker, heartbeat_at, progress, cancel_requested, opened_round,"
    " recipe"
)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _job(row: tuple[Any, ...]) -> JobRow:
    (id_, state, trigger, parent, version, seen, examples, reason, open_next, queued) = row[:10]
    started, finished, worker, heartbeat, progress, cancel, opened, recipe = row[10:]
    return JobRow(
        id=int(id_),
        state=state,
        trigger=trigger,
        parent=parent,
        version=version,
        verified_seen=int(seen),
        examples=json.loads(examples),
        reason=reason,
        open_next=bool(open_next),
        queued_at=float(queued),
        started_at=_optional_float(started),
        finished_at=_optional_float(finished),
        worker=worker,
        heartbeat_at=_optional_float(heartbeat),
        progress=json.loads(progress) if progress else {},
        cancel_requested=bool(cancel),
        opened_round=None if opened is None else int(opened),
        recipe=json.loads(recipe) if recipe else {},
    )


class JobQueue:
    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout

    def _new_job(
        self,
        state: str,
        trigger: str,
        parent: str | None,
        verified_seen: int,
        examples: dict[str, int],
        open_next: bool,
        after: int | None,
        worker: str | None,
        recipe: dict[str, Any] | None,
    ) -> JobRow:
        now = time.time()
        running = state == "running"
        # `after`: only if no job came since the one the caller decided on (two servers
        # deciding at once on the same verified drawings start one job, not two in a row).
        unchanged = (
            "" if after is None else " WHERE coalesce((SELECT max(id) FROM training_jobs), 0) = ?"
        )
        params: list[object] = [
            state,
            trigger,
            parent,
            verified_seen,
            json.dumps(examples),
            int(open_next),
            now,
            now if running else None,
            now if running else None,
            worker,
            None if recipe is None else json.dumps(recipe),
        ]
        with connect(self.layout.database_url) as db:
            try:
                row = db.execute(
                    "INSERT INTO training_jobs (state, trigger, parent, verified_seen, examples,"
                    " open_next, queued_at, started_at, heartbeat_at, worker, recipe)"
                    f" SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{unchanged} RETURNING {_JOB_COLUMNS}",
                    params if after is None else [*params, after],
                ).fetchone()
            except Conflict:
                row = None
        if row is None:
            raise JobRunning("A training job is already queued or running (or just finished).")
        return _job(tuple(row))

    def start_job(
        self,
        trigger: str,
        parent: str | None,
        verified_seen: int,
        examples: dict[str, int],
        *,
        open_next: bool = True,
        worker: str | None = None,
        after: int | None = None,
        recipe: dict[str, Any] | None = None,
    ) -> JobRow:
        """Record a job this process runs now; `JobRunning` if one is queued or running, or
        (with `after`, the newest job id the caller decided on) if another job came since."""
        return self._new_job(
            "running", trigger, parent, verified_seen, examples, open_next, after, worker, recipe
        )

    def enqueue_job(
        self,
        trigger: str,
        parent: str | None,
        verified_seen: int,
        examples: dict[str, int],
        *,
        open_next: bool = True,
        after: int | None = None,
        recipe: dict[str, Any] | None = None,
    ) -> JobRow:
        """Queue a job for a trainer worker, with the `recipe` it is to follow (the worker's
        own settings for what it leaves out); `JobRunning` as for `start_job`."""
        return self._new_job(
            "queued", trigger, parent, verified_seen, examples, open_next, after, None, recipe
        )

    def claim_job(self, worker: str) -> JobRow | None:
        """Take the queued job, if there is one: one conditional UPDATE, so of two trainers
        asking at once exactly one gets it."""
        now = time.time()
        with connect(self.layout.database_url) as db:
            row = db.execute(
                "UPDATE training_jobs SET state = 'running', worker = ?, started_at = ?,"
                " heartbeat_at = ?"
                " WHERE id = (SELECT min(id) FROM training_jobs WHERE state = 'queued')"
                f" AND state = 'queued' RETURNING {_JOB_COLUMNS}",
                (worker, now, now),
            ).fetchone()
        return None if row is None else _job(tuple(row))

    def heartbeat(
        self, job_id: int, progress: dict[str, Any], examples: dict[str, int] | None = None
    ) -> bool:
        """Record that the job's trainer lives, with its progress; True if a cancel was
        requested (or the job is no longer running: someone gave up on it)."""
        with connect(self.layout.database_url) as db:
            row = db.execute(
                "UPDATE training_jobs SET heartbeat_at = ?, progress = ?,"
                " examples = coalesce(?, examples)"
                " WHERE id = ? AND state = 'running' RETURNING cancel_requested",
                (
                    time.time(),
                    json.dumps(progress),
                    None if examples is None else json.dumps(examples),
                    job_id,
                ),
            ).fetchone()
        return row is None or bool(row[0])

    def request_cancel(self) -> JobRow | None:
        """Cancel the active job: a queued one at once, a running one by asking its trainer
        (it stops at its next heartbeat). The job, or None when none is queued or running."""
        with connect(self.layout.database_url) as db:
            row = db.execute(
                "UPDATE training_jobs SET state = 'cancelled', finished_at = ?,"
                " reason = 'cancelled before a trainer took it' WHERE state = 'queued'"
                f" RETURNING {_JOB_COLUMNS}",
                (time.time(),),
            ).fetchone()
            if row is None:
                row = db.execute(
                    "UPDATE training_jobs SET cancel_requested = 1 WHERE state = 'running'"
                    f" RETURNING {_JOB_COLUMNS}"
                ).fetchone()
        return None if row is None else _job(tuple(row))

    def finish_job(
        self,
        job_id: int,
        state: str,
        reason: str,
        version: str | None,
        opened_round: int | None = None,
    ) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"a job finishes as one of {FINAL_STATES}, not {state!r}")
        with connect(self.layout.database_url) as db:
            db.execute(
                "UPDATE training_jobs SET state = ?, reason = ?, version = ?, opened_round = ?,"
                " finished_at = ? WHERE id = ? AND state = 'running'",
                (state, reason, version, opened_round, time.time(), job_id),
            )

    def fail_stale_jobs(self, timeout_seconds: float) -> int:
        """Fail running jobs whose trainer has not written a heartbeat for `timeout_seconds`
        (it died, or its machine did); return how many."""
        now = time.time()
        with connect(self.layout.database_url) as db:
            cursor = db.execute(
                "UPDATE training_jobs SET state = 'failed', finished_at = ?, reason = ?"
                " WHERE state = 'running' AND coalesce(heartbeat_at, started_at, queued_at) < ?",
                (
                    now,
                    f"the trainer stopped reporting (no heartbeat for {timeout_seconds:g} s)",
                    now - timeout_seconds,
                ),
            )
            return cursor.rowcount

    def job(self, job_id: int) -> JobRow | None:
        with connect(self.layout.database_url) as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM training_jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return None if row is None else _job(tuple(row))

    def jobs(self, limit: int = 20) -> list[JobRow]:
        """The newest jobs first."""
        with connect(self.layout.database_url) as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM training_jobs ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_job(tuple(row)) for row in rows]
