"""The model registry, in the game database (migrations 3 and 4): which model versions exist,
and their files, so that any process can serve any version.

Every model version the game knows gets a row: file, sha256, parent, training data counts, gate
verdict, MNIST accuracy, and the files themselves (ONNX, card, torch weights), so a server or a
trainer on another machine can fetch a model it has not got (`fetch_model_file`). Whether it may
serve is stored (`accepted`: it passed the gate, or it is a bootstrap model); whether it *does*
serve follows from the rounds:

    serving    bound to the open round (or, with no round open, to the newest round)
    retired    served a round once, no longer
    candidate  passed the gate but never served (left for an admin to open)
    rejected   failed the gate: it may never serve

Synchronous (server/storage/sync.py, SQLite or PostgreSQL): the CLI and the trainer worker call
it directly and the server through `asyncio.to_thread`. A connection per call is cheap for a
few rows per model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.atomic import atomic_write
from server.config import DataLayout
from server.serving.model_files import (
    ModelCard,
    card_json,
    list_models,
    may_serve,
    weights_path_for,
)
from server.storage.base import StorageError
from server.storage.sync import connect

log = logging.getLogger(__name__)


class RegistryError(StorageError):
    """The database is missing or a registry change is not possible; the message says why."""


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


def _version_key(version: str) -> int:
    return int(version[1:])


def _card_json(card: ModelCard) -> str:
    return card_json(card)


class ModelStore:
    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout

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
