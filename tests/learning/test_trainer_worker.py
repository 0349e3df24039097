"""`fool-the-model trainer` as its own worker, against SQLite and PostgreSQL: a server in
external-trainer mode queues the job, a worker on another data directory (another machine, as
far as files go) takes it, trains it tiny, gates it, registers the candidate with its bytes and
opens the next round. Two workers never take one job; cancel, SIGTERM and SIGKILL each end the
job with the reason."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import pytest
from data_dirs import new_data_dir, trained_data_dir
from services import RedisServer
from waiting import assert_stays, wait_until
from worker_helpers import (
    Child,
    Server,
    held_out_count,
    query,
    seed_verified,
    start_worker,
)

from server.config import DataLayout
from server.mnist import Mnist
from server.serving.model_files import sha256_file
from server.serving.model_store import ModelStore

pytestmark = pytest.mark.slow


@pytest.fixture
def server_dir(tmp_path: Path, trained_model: Path) -> Path:
    return trained_data_dir(tmp_path / "server", trained_model)


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    """The worker's own data directory: MNIST only, no models (it fetches them)."""
    return new_data_dir(tmp_path / "worker", mnist=True)


def wait_running(server: Server, trainer: Child) -> dict:
    """The job, as `server` tells it, once its `trainer` (a worker, or a server training in
    process) reports training progress."""

    def training() -> dict | None:
        job = server.job()
        assert trainer.process.poll() is None, trainer.output()[-3000:]
        return job if job["state"] == "running" and job["step"] > 0 else None

    return wait_until(training, 120, "the trainer never reported progress", poll=0.2)


def test_a_queued_job_is_trained_by_one_of_two_workers_and_opens_the_next_round(
    database_url: str,
    server_dir: Path,
    tmp_path: Path,
    mnist: Mnist,
    redis_server: RedisServer,
    children: list[Child],
) -> None:
    import redis

    server = Server(server_dir, database_url)
    children.append(server)
    seeded = seed_verified(database_url, mnist, 30)
    heldout = held_out_count(mnist, len(seeded))

    launched = server.admin.post("/api/admin/rounds/next")
    assert launched.status_code == 202, launched.text
    assert launched.json()["state"] == "queued"
    recipe = {"epochs": 1, "train_limit": 1000, "test_limit": 500, "mnist_floor": 0.5}
    assert launched.json()["recipe"] == {**recipe, "heldout_percent": 20, "min_train_drawings": 20}
    assert launched.json()["examples"] == {
        "train": 30 - heldout,
        "heldout": heldout,
        "read_right_train": 0,
        "read_right_heldout": 0,
    }
    assert launched.json()["note"] is None
    again = server.admin.post("/api/admin/rounds/next")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "trainer_busy")

    listener = redis.Redis.from_url(redis_server.url).pubsub()
    listener.subscribe("fool-the-model:0")
    # The workers' own sizes differ from the server's: the job's recipe is what counts.
    worker_env = {
        "FTM_REDIS_URL": redis_server.url,
        "FTM_TRAIN_LIMIT": "600",
        "FTM_TEST_LIMIT": "300",
    }
    workers = {
        name: start_worker(
            new_data_dir(tmp_path / name, mnist=True), database_url, name, "--once", **worker_env
        )
        for name in ("alpha", "beta")
    }
    children.extend(workers.values())
    job = server.wait_for_job("succeeded", "failed", "cancelled")
    assert (job["state"], job["outcome"], job["version"], job["opened_round"]) == (
        "succeeded",
        "passed",
        "v2",
        2,
    ), job
    assert job["gate"]["passed"] is True
    assert any(s["state"] == "running" and s["step"] > 0 and s["loss"] for s in server.seen)

    winner = job["worker"]
    loser = ({"alpha", "beta"} - {winner}).pop()
    assert workers[winner].wait() == 0
    assert_stays(
        lambda: workers[loser].process.poll() is None,
        0.5,
        "the other --once worker exited without a job of its own",
    )
    workers[loser].signal(signal.SIGTERM)
    assert workers[loser].wait(30) == 0
    assert "trainer took a job" in workers[winner].output()
    assert "trainer took a job" not in workers[loser].output()
    assert query(database_url, "SELECT worker, state FROM training_jobs") == [(winner, "passed")]

    # The next round is open in the database, bound to the candidate, and announced.
    rounds = server.admin.get("/api/rounds").json()
    assert [(r["number"], r["state"], r["model_version"]) for r in rounds] == [
        (2, "open", "v2"),
        (1, "closing", "v1"),
    ]
    message = wait_until(
        lambda: listener.get_message(ignore_subscribe_messages=True, timeout=1),
        10,
        "no round message on Redis",
        poll=0,
    )
    listener.close()
    assert json.loads(message["data"]) == {
        "topic": "round",
        "payload": {"number": 2, "model_version": "v2"},
    }

    # The worker fetched v1 from the registry to fine-tune from, and registered v2 with bytes.
    winner_models = DataLayout(tmp_path / winner).models_dir
    assert sha256_file(winner_models / "v1.onnx") == sha256_file(server_dir / "models/v1.onnx")
    assert (winner_models / "v1.pt").read_bytes() == (server_dir / "models/v1.pt").read_bytes()
    [(sha, onnx, card, weights, parent, extra)] = query(
        database_url,
        "SELECT sha256, onnx, card, weights, parent, training FROM models WHERE version = 'v2'",
    )
    assert hashlib.sha256(bytes(onnx)).hexdigest() == sha == sha256_file(winner_models / "v2.onnx")
    assert json.loads(card)["sha256"] == sha and bytes(weights)
    assert parent == "v1"
    assert json.loads(extra) == {
        "mnist_train": 1000,
        "extra": 30 - heldout,
        "replay": 0,
        "mnist_test": 500,
    }
    models = {m["version"]: m["status"] for m in server.admin.get("/api/admin/models").json()}
    assert models == {"v1": "retired", "v2": "serving"}

    # The server's machine gets the file from the registry.
    path = ModelStore(DataLayout(server_dir, database_url)).fetch_model_file("v2")
    assert sha256_file(path) == sha


def test_a_cancel_request_through_the_server_stops_the_workers_job(
    database_url: str, server_dir: Path, worker_dir: Path, children: list[Child]
) -> None:
    server = Server(server_dir, database_url)
    children.append(server)
    # A queued job is cancelled at once.
    assert server.admin.post("/api/admin/rounds/next").status_code == 202
    cancelled = server.admin.post("/api/admin/trainer/cancel")
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    again = server.admin.post("/api/admin/trainer/cancel")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "no_job")

    # A running one stops at the worker's next heartbeat.
    assert server.admin.post("/api/admin/rounds/next").status_code == 202
    worker = start_worker(worker_dir, database_url, "gamma", "--once")
    children.append(worker)
    wait_running(server, worker)
    assert server.admin.post("/api/admin/trainer/cancel").status_code == 200
    job = server.wait_for_job("cancelled", "failed", "succeeded")
    assert (job["state"], job["outcome"], job["version"]) == ("cancelled", "cancelled", None)
    assert worker.wait() == 0
    assert query(database_url, "SELECT state FROM training_jobs ORDER BY id") == [
        ("cancelled",),
        ("cancelled",),
    ]
    assert query(database_url, "SELECT version FROM models") == [("v1",)]
    rounds = server.admin.get("/api/rounds").json()
    assert [(r["number"], r["state"]) for r in rounds] == [(1, "open")]


def test_a_worker_stopped_by_sigterm_fails_its_job_with_the_reason(
    database_url: str, server_dir: Path, worker_dir: Path, children: list[Child]
) -> None:
    server = Server(server_dir, database_url)
    children.append(server)
    assert server.admin.post("/api/admin/rounds/next").status_code == 202
    worker = start_worker(worker_dir, database_url, "delta")  # not --once: runs until stopped
    children.append(worker)
    wait_running(server, worker)
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    job = server.job()
    assert (job["state"], job["outcome"]) == ("failed", "failed")
    assert "stopped (SIGTERM)" in job["error"]
    assert server.admin.post("/api/admin/rounds/next").status_code == 202  # nothing left behind


def test_a_killed_workers_job_fails_after_the_heartbeat_timeout(
    database_url: str, server_dir: Path, worker_dir: Path, children: list[Child]
) -> None:
    server = Server(
        server_dir,
        database_url,
        FTM_TRAINER_HEARTBEAT_TIMEOUT="3",
        FTM_RETRAIN_POLL_SECONDS="0.5",  # the check that also fails silent jobs
    )
    children.append(server)
    assert server.admin.post("/api/admin/rounds/next").status_code == 202
    worker = start_worker(worker_dir, database_url, "epsilon", "--once")
    children.append(worker)
    job = wait_running(server, worker)
    worker.signal(signal.SIGKILL)  # no shutdown code runs; the trainer child follows it
    worker.wait(30)
    assert server.job()["state"] == "running"  # for now: the heartbeat is still recent
    job = server.wait_for_job("failed")
    assert "no heartbeat for 3 s" in job["error"]
    assert server.admin.post("/api/admin/rounds/next").status_code == 202


def jobs(database_url: str) -> list[tuple[object, ...]]:
    return query(database_url, "SELECT id, state FROM training_jobs")


def test_the_automatic_triggers_of_two_servers_queue_one_job(
    database_url: str,
    tmp_path: Path,
    trained_model: Path,
    mnist: Mnist,
    children: list[Child],
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[retrain]\nnew_verified_threshold = 5\n")
    env = {"FTM_RULES": str(rules), "FTM_RETRAIN_POLL_SECONDS": "0.1"}
    first = Server(trained_data_dir(tmp_path / "a", trained_model), database_url, **env)
    children.append(first)
    seed_verified(database_url, mnist, 5)
    second = Server(trained_data_dir(tmp_path / "b", trained_model), database_url, **env)
    children.append(second)
    job = first.wait_for_job("queued")
    assert job["trigger"] == "automatic"
    # Both triggers look about 20 times in 2 s (they show no count of their looks to wait on).
    assert_stays(lambda: jobs(database_url) == [(job["id"], "queued")], 2.0, "a second job")
    assert second.job()["id"] == job["id"]  # the other process sees the same job
    # Cancelled through the other process; the same drawings do not queue it again.
    assert second.admin.post("/api/admin/trainer/cancel").json()["state"] == "cancelled"
    assert_stays(lambda: jobs(database_url) == [(job["id"], "cancelled")], 1.0, "queued again")
    assert first.job()["state"] == "cancelled"


def test_a_job_trained_inside_one_server_is_seen_and_cancelled_through_another(
    database_url: str, tmp_path: Path, trained_model: Path, children: list[Child]
) -> None:
    """The in-process trainer (the default) writes heartbeats and progress to the job row too."""
    first = Server(trained_data_dir(tmp_path / "a", trained_model), database_url, FTM_TRAINER="")
    children.append(first)
    second = Server(trained_data_dir(tmp_path / "b", trained_model), database_url, FTM_TRAINER="")
    children.append(second)
    assert first.admin.post("/api/admin/rounds/next").status_code == 202
    busy = second.admin.post("/api/admin/rounds/next")
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "trainer_busy")
    job = wait_running(second, trainer=first)
    assert job["worker"] == first.job()["worker"]
    assert second.admin.post("/api/admin/trainer/cancel").status_code == 200
    job = first.wait_for_job("cancelled", "failed", "succeeded")
    assert (job["state"], job["version"]) == ("cancelled", None)
    assert second.wait_for_job("cancelled")["id"] == job["id"]
