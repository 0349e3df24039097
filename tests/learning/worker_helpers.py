"""Helpers for the trainer-worker tests: a real server in external-trainer mode and real
`fool-the-model trainer` workers, each a child process, sharing one database (SQLite file or
PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from data_dirs import JOB_TIMEOUT, REPO, SMALL_JOB
from services import free_port, wait_for_healthz
from waiting import wait_until

from game_rules.heldout import content_key, held_out
from server.mnist import Mnist
from server.storage.sync import connect

ADMIN_TOKEN = "worker-test-token"


def environment(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **SMALL_JOB,
        "PYTHONPATH": str(REPO),
        "FTM_DATABASE_URL": database_url,
        "FTM_ADMIN_TOKEN": ADMIN_TOKEN,
        **extra,
    }


class Child:
    """A `python -m server.cli` child process whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *args],
            env=env,
            cwd=REPO,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = JOB_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            tail = self.output()[-3000:]
            raise AssertionError(f"{self.log.name} did not exit:\n{tail}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        self._log_file.close()


class Server(Child):
    """`fool-the-model serve`, with `FTM_TRAINER=external` unless `env` says otherwise."""

    def __init__(self, data_dir: Path, database_url: str, **env: str) -> None:
        env = {"FTM_TRAINER": "external", **env}
        self.port = free_port()
        self.http = f"http://127.0.0.1:{self.port}"
        super().__init__(
            ["--data-dir", str(data_dir), "serve", "--port", str(self.port)],
            environment(database_url, **env),
            data_dir.parent / f"server-{self.port}.log",
        )
        try:
            wait_for_healthz(self.http, self.process, self.log)
        except BaseException:
            super().close()
            raise
        self.seen: list[dict[str, Any]] = []  # every state of the job read, in order
        self.admin = httpx.Client(
            base_url=self.http, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )

    def job(self) -> dict[str, Any]:
        reply = self.admin.get("/api/admin/trainer")
        assert reply.status_code == 200, reply.text
        job: dict[str, Any] = reply.json()
        self.seen.append(job)
        return job

    def wait_for_job(self, *states: str) -> dict[str, Any]:
        """The job once it is in one of `states` (`seen` keeps what it was on the way)."""

        def reached() -> dict[str, Any] | None:
            job = self.job()
            return job if job.get("state") in states else None

        return wait_until(reached, JOB_TIMEOUT, f"the job never reached {states}", poll=0.2)

    def close(self) -> None:
        self.admin.close()
        super().close()


def start_worker(data_dir: Path, database_url: str, name: str, *args: str, **env: str) -> Child:
    """`fool-the-model trainer --name NAME ARGS` on its own data directory (another machine)."""
    return Child(
        ["--data-dir", str(data_dir), "trainer", "--name", name, "--poll-seconds", "0.2", *args],
        environment(database_url, **env),
        data_dir.parent / f"worker-{name}.log",
    )


def seed_verified(database_url: str, mnist: Mnist, count: int) -> list[int]:
    """`count` drawings (MNIST test digits) verified by an admin in the open round, written as
    the game writes them; their attempt ids."""
    with connect(database_url) as db:
        (round_id,) = db.execute("SELECT id FROM rounds WHERE state = 'open'").fetchone()
        (player,) = db.execute(
            "INSERT INTO players (name, name_key, token_hash, created_at)"
            " VALUES ('Drawer', 'drawer', 'hash', ?) RETURNING id",
            (time.time(),),
        ).fetchone()
        ids = []
        for index in range(count):
            image = mnist.test_images[index].astype("<f4") / 255.0
            label = int(mnist.test_labels[index])
            (attempt,) = db.execute(
                "INSERT INTO attempts (player_id, round_id, created_at, strokes, image, label,"
                " predicted, probs, model_version, outcome)"
                " VALUES (?, ?, ?, '[]', ?, ?, ?, ?, 'v1', 'pending') RETURNING id",
                (
                    player,
                    round_id,
                    time.time(),
                    np.ascontiguousarray(image, dtype="<f4").tobytes(),
                    label,
                    (label + 1) % 10,
                    json.dumps([0.1] * 10),
                ),
            ).fetchone()
            db.execute(
                "UPDATE claims SET state = 'verified', label = ?, by_admin = 1, settled_at = ?"
                " WHERE attempt_id = ?",
                (label, time.time(), attempt),
            )
            ids.append(int(attempt))
    return ids


def held_out_count(mnist: Mnist, count: int, percent: int = 20) -> int:
    """How many of `seed_verified`'s `count` drawings the held-out rule keeps out of training."""
    images = [mnist.test_images[i].astype("<f4") / 255.0 for i in range(count)]
    return sum(held_out([content_key(image) for image in images], percent))


def query(database_url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(database_url) as db:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]
