"""The registry's files and job queue on SQLite and PostgreSQL: models carry their bytes and come
back when a file is missing (never with the wrong bytes); a queued job is taken exactly once;
a silent running job is failed, a live one left alone."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from learning_helpers import install_model

from server.config import DataLayout
from server.learning.jobs.queue import JobQueue, JobRunning
from server.serving.model_files import sha256_file, weights_path_for
from server.serving.model_store import ModelStore, RegistryError
from server.storage import open_repository
from server.storage.migrations import MIGRATIONS
from server.storage.sync import connect
from server.storage.urls import sqlite_path

LinearModelFactory = Callable[..., Path]


@pytest.fixture
def layout(database_url: str, tmp_path: Path) -> DataLayout:
    """A data directory on a fresh, migrated database of each backend."""

    async def migrate() -> None:
        await (await open_repository(database_url)).close()

    asyncio.run(migrate())
    return DataLayout(tmp_path / "data", database_url)


@pytest.fixture
def model_store(layout: DataLayout) -> ModelStore:
    return ModelStore(layout)


@pytest.fixture
def job_queue(layout: DataLayout) -> JobQueue:
    return JobQueue(layout)


def test_a_missing_model_file_is_written_back_from_the_registry(
    model_store: ModelStore, linear_onnx_model: LinearModelFactory
) -> None:
    layout = model_store.layout
    card = install_model(layout.root, "v1", linear_onnx_model(seed=1))
    weights_path_for(layout.model_path("v1")).write_bytes(b"torch weights")
    model_store.sync()
    original = layout.model_path("v1").read_bytes()
    for path in layout.models_dir.iterdir():
        path.unlink()

    path = model_store.fetch_model_file("v1")
    assert path == layout.model_path("v1") and path.read_bytes() == original
    assert sha256_file(path) == card.sha256
    assert layout.model_card_path("v1").is_file()
    assert weights_path_for(path).read_bytes() == b"torch weights"
    assert model_store.fetch_model_file("v1") == path  # present: nothing to do
    with pytest.raises(RegistryError, match="no model 'v9'"):
        model_store.fetch_model_file("v9")


def test_bytes_that_do_not_match_the_registered_sha256_are_refused(
    model_store: ModelStore, linear_onnx_model: LinearModelFactory
) -> None:
    layout = model_store.layout
    install_model(layout.root, "v1", linear_onnx_model(seed=1))
    model_store.sync()
    tampered = linear_onnx_model(seed=2).read_bytes()
    with connect(layout.database_url) as db:
        db.execute("UPDATE models SET onnx = ? WHERE version = 'v1'", (tampered,))
    layout.model_path("v1").unlink()
    layout.model_card_path("v1").unlink()
    with pytest.raises(RegistryError, match="refusing to write"):
        model_store.fetch_model_file("v1")
    assert list(layout.models_dir.iterdir()) == []


def test_another_model_under_a_registered_version_is_refused(
    model_store: ModelStore, linear_onnx_model: LinearModelFactory
) -> None:
    layout = model_store.layout
    first = install_model(layout.root, "v1", linear_onnx_model(seed=1))
    assert model_store.register(first) is True
    assert model_store.register(first) is False  # the same model again: nothing changes
    other = install_model(layout.root, "v1", linear_onnx_model(seed=2))
    with pytest.raises(RegistryError, match="already registered with another model"):
        model_store.register(other)
    [model] = model_store.models()
    assert model.sha256 == first.sha256


def claim(job_queue: JobQueue, name: str, start: threading.Barrier, taken: list[str]) -> None:
    start.wait()
    row = job_queue.claim_job(name)
    if row is not None:
        taken.append(row.worker or "?")


def test_a_queued_job_is_taken_by_exactly_one_of_many_trainers(job_queue: JobQueue) -> None:
    for attempt in range(5):
        job = job_queue.enqueue_job("admin", "v1", 0, {"train": 0, "heldout": 0})
        assert job.state == "queued"
        with pytest.raises(JobRunning):
            job_queue.enqueue_job("admin", "v1", 0, {"train": 0, "heldout": 0})
        taken: list[str] = []
        start = threading.Barrier(6)
        threads = [
            threading.Thread(target=claim, args=(job_queue, f"w{i}", start, taken))
            for i in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(taken) == 1, (attempt, taken)
        assert job_queue.claim_job("late") is None
        job_queue.finish_job(job.id, "failed", "test", None)
        [row] = job_queue.jobs(1)
        assert (row.id, row.state, row.worker) == (job.id, "failed", taken[0])


def test_a_job_decided_on_an_older_job_is_not_started(job_queue: JobQueue) -> None:
    first = job_queue.start_job("automatic", "v1", 5, {}, after=None)
    job_queue.finish_job(first.id, "passed", "", "v2")
    # Another server decided on the same drawings before `first` existed: nothing starts.
    with pytest.raises(JobRunning):
        job_queue.enqueue_job("automatic", "v1", 5, {}, after=0)
    second = job_queue.enqueue_job("automatic", "v2", 9, {}, after=first.id)
    assert second.state == "queued"


def test_only_silent_running_jobs_are_failed(job_queue: JobQueue) -> None:
    job = job_queue.enqueue_job("admin", "v1", 0, {})
    assert job_queue.fail_stale_jobs(0.5) == 0  # queued jobs wait for a trainer forever
    job_queue.claim_job("w")
    assert job_queue.heartbeat(job.id, {"step": 3}) is False
    assert job_queue.fail_stale_jobs(60) == 0
    time.sleep(0.6)
    assert job_queue.fail_stale_jobs(0.5) == 1
    [row] = job_queue.jobs(1)
    assert (row.state, row.progress) == ("failed", {"step": 3})
    assert "no heartbeat for 0.5 s" in (row.reason or "")
    assert job_queue.heartbeat(job.id, {}) is True  # its trainer, if alive after all, stops


def test_a_cancel_request_reaches_the_running_jobs_heartbeat(job_queue: JobQueue) -> None:
    assert job_queue.request_cancel() is None
    job = job_queue.enqueue_job("admin", "v1", 0, {})
    job_queue.claim_job("w")
    assert job_queue.heartbeat(job.id, {}) is False
    requested = job_queue.request_cancel()
    assert requested is not None and requested.cancel_requested
    assert job_queue.heartbeat(job.id, {}) is True


def test_stored_bytes_match_the_files(
    model_store: ModelStore, linear_onnx_model: LinearModelFactory
) -> None:
    layout = model_store.layout
    card = install_model(layout.root, "v1", linear_onnx_model(seed=3))
    model_store.sync()
    with connect(layout.database_url) as db:
        onnx, weights = db.execute("SELECT onnx, weights FROM models").fetchone()
    assert hashlib.sha256(bytes(onnx)).hexdigest() == card.sha256
    assert weights is None  # no .pt beside this model


def test_migration_4_keeps_the_jobs_and_models_of_schema_3(database_url: str) -> None:
    """A database last opened before migration 4 keeps its job log and model rows; new ids
    continue after the old ones."""
    path = sqlite_path(database_url)
    migrations = MIGRATIONS["sqlite" if path is not None else "postgresql"]
    if path is not None:
        path.touch()
    with connect(database_url) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version (version) VALUES (3)")
        for sql in migrations[:3]:
            if path is not None:
                db.raw.executescript(sql)
            else:
                db.raw.execute(sql)
        db.execute(
            "INSERT INTO models (version, file, sha256, parent, training, gate, accepted,"
            " mnist_accuracy, created_at) VALUES ('v1', 'models/v1.onnx', ?, NULL, '{}', '{}',"
            " 1, 0.9, 1.0)",
            ("ab" * 32,),
        )
        db.execute(
            "INSERT INTO training_jobs (id, state, trigger, parent, verified_seen, examples,"
            " reason, started_at, finished_at)"
            " VALUES (7, 'failed', 'admin', 'v1', 3, '{}', 'old', 10.0, 11.0)"
        )

    async def migrate() -> None:
        await (await open_repository(database_url)).close()

    asyncio.run(migrate())
    layout = DataLayout(Path("/nonexistent"), database_url)
    model_store, job_queue = ModelStore(layout), JobQueue(layout)
    [old] = job_queue.jobs()
    assert (old.id, old.state, old.reason, old.queued_at, old.started_at) == (
        7,
        "failed",
        "old",
        10.0,
        10.0,
    )
    assert [m.version for m in model_store.models()] == ["v1"]
    new = job_queue.enqueue_job("admin", "v1", 3, {})
    assert new.id > 7 and new.state == "queued"
