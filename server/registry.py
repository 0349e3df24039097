"""The model registry and the training-job log, in the game database (migration 3).

Every model version the game knows gets a row: file, sha256, parent, training data counts, gate
verdict and MNIST accuracy. Whether it may serve is stored (`accepted`: it passed the gate, or
it is a bootstrap model); whether it *does* serve follows from the rounds:

    serving    bound to the open round (or, with no round open, to the newest round)
    retired    served a round once, no longer
    candidate  passed the gate but never served (left for an admin to open)
    rejected   failed the gate: it may never serve

Plain sqlite3, synchronous: the CLI calls it directly and the server through
`asyncio.to_thread`. A connection per call is cheap, and WAL lets it read and write beside the
game's own connections (a few rows per training job).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.config import DataLayout
from server.models import ModelCard, list_models, may_serve

JOB_STATES = ("running", "passed", "rejected", "failed", "cancelled")


class RegistryError(RuntimeError):
    """The database is missing or a registry change is not possible; the message says why."""


class JobRunning(RegistryError):
    """A training job is already running."""


@contextmanager
def connect(database: Path) -> Iterator[sqlite3.Connection]:
    """A short-lived connection to an existing game database."""
    if not Path(database).is_file():
        raise RegistryError(
            f"No game database at {database}: start the server once (`fool-the-model serve`)."
        )
    db = sqlite3.connect(database, timeout=10, isolation_level=None)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        yield db
    finally:
        db.close()


@dataclass(frozen=True)
class ModelRow:
    version: str
    file: str
    sha256: str
    parent: str | None
    training: dict[str, int]
    gate: dict[str, Any]
    accepted: bool
    mnist_accuracy: float
    created_at: float
    status: str  # serving, retired, candidate, rejected (see the module docstring)

    def public(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "parent": self.parent,
            "file": self.file,
            "sha256": self.sha256,
            "training": self.training,
            "mnist_accuracy": self.mnist_accuracy,
            "gate": self.gate,
            "created_at": self.created_at,
        }


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
    started_at: float
    finished_at: float | None


_MODEL_QUERY = """
    SELECT m.version, m.file, m.sha256, m.parent, m.training, m.gate, m.accepted,
           m.mnist_accuracy, m.created_at,
           CASE
             WHEN NOT m.accepted THEN 'rejected'
             WHEN m.version = (SELECT model_version FROM rounds
                               ORDER BY state = 'open' DESC, number DESC LIMIT 1) THEN 'serving'
             WHEN EXISTS (SELECT 1 FROM rounds r
                          WHERE r.model_version = m.version AND r.opened_at IS NOT NULL)
               THEN 'retired'
             ELSE 'candidate'
           END
    FROM models m
"""

_JOB_COLUMNS = (
    "id, state, trigger, parent, version, verified_seen, examples, reason, started_at, finished_at"
)


def _model(row: tuple[Any, ...]) -> ModelRow:
    version, file, sha, parent, training, gate, accepted, mnist, created, status = row
    return ModelRow(
        version=version,
        file=file,
        sha256=sha,
        parent=parent,
        training=json.loads(training),
        gate=json.loads(gate),
        accepted=bool(accepted),
        mnist_accuracy=float(mnist),
        created_at=float(created),
        status=status,
    )


def _job(row: tuple[Any, ...]) -> JobRow:
    id_, state, trigger, parent, version, seen, examples, reason, started, finished = row
    return JobRow(
        id=int(id_),
        state=state,
        trigger=trigger,
        parent=parent,
        version=version,
        verified_seen=int(seen),
        examples=json.loads(examples),
        reason=reason,
        started_at=float(started),
        finished_at=None if finished is None else float(finished),
    )


def _version_key(version: str) -> int:
    return int(version[1:])


class Registry:
    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout

    # Models

    def register(self, card: ModelCard) -> None:
        """Record a model from its card (once: a version already registered is left alone)."""
        path = self.layout.model_path(card.version)
        with connect(self.layout.database) as db:
            db.execute(
                "INSERT OR IGNORE INTO models (version, file, sha256, parent, training, gate,"
                " accepted, mnist_accuracy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    card.version,
                    str(path.relative_to(self.layout.root)),
                    card.sha256,
                    card.parent,
                    json.dumps(card.training),
                    json.dumps(card.gate),
                    int(may_serve(card)),
                    float(card.mnist_test_accuracy),
                    time.time(),
                ),
            )

    def sync(self) -> None:
        """Register every model in DATA/models the registry has not seen (first start: the
        bootstrap model; after a crash: a candidate built but not yet recorded)."""
        for card in list_models(self.layout):
            self.register(card)

    def models(self) -> list[ModelRow]:
        """Every registered model, oldest first."""
        with connect(self.layout.database) as db:
            rows = [_model(tuple(row)) for row in db.execute(_MODEL_QUERY)]
        return sorted(rows, key=lambda m: _version_key(m.version))

    def model(self, version: str) -> ModelRow | None:
        return next((m for m in self.models() if m.version == version), None)

    # Training jobs

    def start_job(
        self, trigger: str, parent: str | None, verified_seen: int, examples: dict[str, int]
    ) -> JobRow:
        """Record a new running job; `JobRunning` if one is running already."""
        with connect(self.layout.database) as db:
            try:
                cursor = db.execute(
                    "INSERT INTO training_jobs (state, trigger, parent, verified_seen, examples,"
                    " started_at) VALUES ('running', ?, ?, ?, ?, ?)",
                    (trigger, parent, verified_seen, json.dumps(examples), time.time()),
                )
            except sqlite3.IntegrityError:
                raise JobRunning("A training job is already running.") from None
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM training_jobs WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
        return _job(tuple(row))

    def finish_job(self, job_id: int, state: str, reason: str, version: str | None) -> None:
        if state not in JOB_STATES[1:]:
            raise ValueError(f"a job finishes as one of {JOB_STATES[1:]}, not {state!r}")
        with connect(self.layout.database) as db:
            db.execute(
                "UPDATE training_jobs SET state = ?, reason = ?, version = ?, finished_at = ?"
                " WHERE id = ? AND state = 'running'",
                (state, reason, version, time.time(), job_id),
            )

    def fail_running_jobs(self, reason: str) -> int:
        """Mark jobs left 'running' by a server that died as failed; return how many."""
        with connect(self.layout.database) as db:
            cursor = db.execute(
                "UPDATE training_jobs SET state = 'failed', reason = ?, finished_at = ?"
                " WHERE state = 'running'",
                (reason, time.time()),
            )
            return cursor.rowcount

    def jobs(self, limit: int = 20) -> list[JobRow]:
        """The newest jobs first."""
        with connect(self.layout.database) as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM training_jobs ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_job(tuple(row)) for row in rows]
