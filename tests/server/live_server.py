"""Helpers for the integration tests: a real game server (uvicorn on an ephemeral port, in a
thread of this process or as a child process that a test can kill -9) and real websocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from data_dirs import REPO
from services import free_port, wait_for_healthz
from waiting import wait_until
from websockets.asyncio.client import ClientConnection, connect

from server.app import create_app, uvicorn_config
from server.config import Settings
from server.realtime.limits import Limits
from server.storage.sync import connect as connect_database

ADMIN_TOKEN = "test-admin-token"
REPLY_TIMEOUT = 10.0

# Drawings in canvas pixels.
ONE = {"strokes": [[[50, 10], [52, 90]]]}
SEVEN = {"strokes": [[[10, 10], [90, 10], [40, 95]]]}
ZERO = {"strokes": [[[50, 10], [85, 50], [50, 90], [15, 50], [50, 10]]]}


def configured(data_dir: Path) -> Settings:
    """What `fool-the-model serve --data-dir DATA_DIR` would read from this process's
    environment (tests set `FTM_*` variables with monkeypatch)."""
    return Settings.from_env(data_dir=data_dir)


def db_rows(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from the game database of `data_dir` (SQLite, or `$FTM_DATABASE_URL`)."""
    with connect_database(configured(data_dir).layout.database_url) as db:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]


def row_counts(data_dir: Path) -> dict[str, int]:
    return {
        table: db_rows(data_dir, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("players", "rounds", "attempts", "claims")
    }


class LocalAddress:
    """The URLs of a game server listening on 127.0.0.1:`port`."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class ThreadServer(LocalAddress):
    """uvicorn serving `create_app(settings)` in a background thread of this process, configured
    from the environment (`configured`) plus the allowed `origins` and `hosts`."""

    def __init__(
        self,
        data_dir: Path,
        limits: Limits,
        origins: tuple[str, ...] = (),
        hosts: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        settings = dataclasses.replace(
            configured(data_dir), allowed_origins=origins, allowed_hosts=hosts
        )
        self.app = create_app(settings, limits)
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", 0, limits))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()

        def started() -> bool:
            assert self.thread.is_alive(), "the test server's thread ended before it started"
            return bool(self.server.started)

        wait_until(started, 30, "the test server did not start")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class ProcessServer(LocalAddress):
    """`fool-the-model serve` as a child process, so a test can kill -9 it.

    `env` adds to the environment (FTM_DATABASE_URL, FTM_REDIS_URL, ...); `log` receives the
    server's stderr (its JSON log lines) instead of /dev/null."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.data_dir = data_dir
        self.env = env or {}
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessServer:
        return self.launch().wait_until_ready()

    def launch(self) -> ProcessServer:
        """Start the process without waiting (to start several at once)."""
        env = {**os.environ, "FTM_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONPATH": str(REPO), **self.env}
        log = self.log.open("ab") if self.log is not None else None
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "--data-dir",
                str(self.data_dir),
                "serve",
                "--port",
                str(self.port),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log if log is not None else subprocess.DEVNULL,
        )
        if log is not None:
            log.close()  # the child has its own copy
        return self

    def wait_until_ready(self) -> ProcessServer:
        assert self.process is not None
        wait_for_healthz(self.http, self.process, self.log)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown code runs
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """A graceful shutdown (SIGTERM), as a deployment stops it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def server_processes(
    data_dirs: list[Path], env: dict[str, str], logs: Path
) -> Iterator[list[ProcessServer]]:
    """A server process per data directory (the same one repeated: processes on one machine),
    sharing one game (`env` names its database and Redis), launched at once (so their startups
    race) and stopped gracefully at the end; their logs in `logs/server-N.log`."""
    servers = [ProcessServer(d, env, logs / f"server-{i}.log") for i, d in enumerate(data_dirs)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_until_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


class Client:
    """A websocket player that speaks JSON and skips pushes it is not waiting for."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.pushes: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), REPLY_TIMEOUT)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def reply(self, *types: str) -> dict[str, Any]:
        """The next message of one of `types` (or an error); pushes in between are kept."""
        while True:
            message = await self.recv()
            if message["type"] in (*types, "error"):
                return message
            self.pushes.append(message)

    async def request(self, message: dict[str, Any] | str, *types: str) -> dict[str, Any]:
        await self.send(message)
        return await self.reply(*types)

    async def alive(self) -> bool:
        pong = await self.request({"type": "ping", "id": "alive?"}, "pong")
        return pong == {"type": "pong", "id": "alive?"}

    async def close(self) -> None:
        await self.connection.close()


async def open_client(url: str, **kwargs: Any) -> Client:
    return Client(await connect(url, **kwargs))


async def join(url: str, name: str) -> tuple[Client, dict[str, Any]]:
    client = await open_client(url)
    welcome = await client.request({"type": "hello", "v": 1, "name": name}, "welcome")
    assert welcome["type"] == "welcome", welcome
    return client, welcome


async def spectate(url: str) -> Client:
    client = await open_client(url)
    welcome = await client.request({"type": "hello", "v": 1, "spectator": True}, "welcome")
    assert welcome["type"] == "welcome", welcome
    return client


def admin_headers(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SharedGame:
    """Two server processes on one data directory and one database (the `shared_game` fixture)."""

    a: ProcessServer
    b: ProcessServer
    data_dir: Path
    database_url: str
