"""The model registry and the training-job log, in the game database (migrations 3 and 4).

Every model version the game knows gets a row: file, sha256, parent, training data counts, gate
verdict, MNIST accuracy, and the files themselves (ONNX, card, torch weights), so a server or a
trainer on another machine can fetch a model it has not got (`fetch_model_file`). Whether it may
serve is stored (`accepted`: it passed the gate, or it is a bootstrap model); whether it *does*
serve follows from the rounds:

    serving    bound to the open round (or, with no round open, to the newest round)
    retired    served a round once, no longer
    candidate  passed the gate but never served (left for an admin to open)
    rejected   failed the gate: it may never serve

A training job is `queued` (by a server in external-trainer mode), `running` (taken by a trainer,
which writes a heartbeat and its progress every second), then `passed`, `rejected`, `failed` or
`cancelled`. At most one job is queued or running at a time (a unique index), and a trainer takes
a queued job with one conditional UPDATE, so two trainers never take the same job.

Synchronous (server/storage/sync.py, SQLite or PostgreSQL): the CLI and the trainer worker call
it directly and the server through `asyncio.to_thread`. A connection per call is cheap for a
few rows per training job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.atomic import atomic_write
from server.config import DataLayout
from server.models import ModelCard, list_models, may_serve, weights_path_for
from server.storage.base import Conflict, StorageError
from server.storage.sync import connect

log = logging.getLogger(__name__)

JOB_STATES = ("queued", "running", "passed", "rejected", "failed", "cancelled")
ACTIVE_STATES = JOB_STATES[:2]
FINAL_STATES = JOB_STATES[2:]


class RegistryError(StorageError):
    """The database is missing or a registry change is not possible; the message says why."""


class JobRunning(RegistryError):
    """A training job is already queued or running."""


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


_MODEL_QUERY = """
    SELECT m.version, m.file, m.sha256, m.parent, m.training, m.gate, m.accepted,
           m.mnist_accuracy, m.created_at,
           CASE
             WHEN m.accepted = 0 THEN 'rejected'
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
    "id, state, trigger, parent, version, verified_seen, examples, reason, open_next, queued_at,"
    " started_at, finished_at, worker, heartbeat_at, progress, cancel_requested, opened_round,"
    " recipe"
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


def _version_key(version: str) -> int:
    return int(version[1:])


def _card_json(card: ModelCard) -> str:
    return json.dumps(dataclasses.asdict(card), indent=2, sort_keys=True) + "\n"


class Registry:
    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout

    # Models

    def register(self, card: ModelCard) -> bool:
        """Record a model from its card and its files in DATA/models (ONNX, and the torch
        weights when present); True if it was new. A version already registered with the same
        sha256 is left alone (its files are added if the row has none); with another sha256 it
        is a `RegistryError`: two trainers built different models under one version."""
        path = self.layout.model_path(card.version)
        onnx = path.read_bytes()
        if hashlib.sha256(onnx).hexdigest() != card.sha256:
            raise RegistryError(f"{path} does not match the sha256 its card records")
        weights_path = weights_path_for(path)
        weights = weights_path.read_bytes() if weights_path.is_file() else None
        with connect(self.layout.database_url) as db:
            inserted = db.execute(
                "INSERT INTO models (version, file, sha256, parent, training, gate,"
                " accepted, mnist_accuracy, created_at, onnx, card, weights)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
                    onnx,
                    _card_json(card),
                    weights or None,
                ),
            ).rowcount
            if inserted:
                return True
            (registered,) = db.execute(
                "SELECT sha256 FROM models WHERE version = ?", (card.version,)
            ).fetchone()
            if registered != card.sha256:
                raise RegistryError(
                    f"{card.version} is already registered with another model (sha256 "
                    f"{registered[:12]}…, this file {card.sha256[:12]}…): keep one of them"
                )
            # Registered before the files were stored (schema 3), or by a process without them.
            db.execute(
                "UPDATE models SET onnx = coalesce(onnx, ?), card = coalesce(card, ?),"
                " weights = coalesce(weights, ?) WHERE version = ?",
                (onnx, _card_json(card), weights or None, card.version),
            )
        return False

    def sync(self) -> None:
        """Register every model in DATA/models the registry has not seen (first start: the
        bootstrap model; after a crash: a candidate built but not yet recorded)."""
        with connect(self.layout.database_url) as db:
            stored = {r[0] for r in db.execute("SELECT version FROM models WHERE onnx IS NOT NULL")}
        for card in list_models(self.layout):
            if card.version in stored:
                continue
            try:
                self.register(card)
            except RegistryError as error:  # a local file that is not the registered model
                log.warning("model %s not registered: %s", card.version, error)

    def models(self) -> list[ModelRow]:
        """Every registered model, oldest first."""
        with connect(self.layout.database_url) as db:
            rows = [_model(tuple(row)) for row in db.execute(_MODEL_QUERY)]
        return sorted(rows, key=lambda m: _version_key(m.version))

    def model(self, version: str) -> ModelRow | None:
        return next((m for m in self.models() if m.version == version), None)

    def fetch_model_file(self, version: str) -> Path:
        """DATA/models/{version}.onnx, written (with its card and weights) from the registry's
        copy when missing here: a model trained on another machine. The bytes must match the
        registered sha256, or nothing is written and `RegistryError` says so."""
        path = self.layout.model_path(version)
        card_path = self.layout.model_card_path(version)
        if path.is_file() and card_path.is_file():
            return path
        with connect(self.layout.database_url) as db:
            row = db.execute(
                "SELECT sha256, onnx, card, weights FROM models WHERE version = ?", (version,)
            ).fetchone()
        if row is None:
            raise RegistryError(f"There is no model {version!r} in the registry.")
        sha, onnx, card, weights = row
        if onnx is None or card is None:
            raise RegistryError(
                f"The registry has no file for {version}: copy {path.name} from the machine "
                "that trained it, or start a server there once (it uploads its models)."
            )
        onnx = bytes(onnx)
        actual = hashlib.sha256(onnx).hexdigest()
        if actual != sha:
            raise RegistryError(
                f"The registry's bytes for {version} have sha256 {actual[:12]}…, not the "
                f"registered {sha[:12]}…: refusing to write {path}"
            )
        for target, data in (
            (weights_path_for(path), None if weights is None else bytes(weights)),
            (path, onnx),
            (card_path, card.encode()),  # last: a model counts as present once its card is
        ):
            if data is not None and not target.is_file():
                with atomic_write(target, binary=True, permissions=0o644) as f:
                    f.write(data)
        return path

    def fetch_all(self) -> list[str]:
        """Fetch every registered model with stored files (a trainer does this before it builds
        one, so its new version number is past every registered one); the versions fetched."""
        with connect(self.layout.database_url) as db:
            versions = [
                row[0] for row in db.execute("SELECT version FROM models WHERE onnx IS NOT NULL")
            ]
        fetched = []
        for version in sorted(versions, key=_version_key):
            if not self.layout.model_card_path(version).is_file():
                self.fetch_model_file(version)
                fetched.append(version)
        return fetched

    # Training jobs

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
