"""Fixtures for the integration tests: a data directory with a model, and a running server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from consensus_helpers import prepare
from live_server import (
    ADMIN_TOKEN,
    LinearModelFactory,
    SharedGame,
    ThreadServer,
    add_model,
    server_processes,
)
from services import PostgresServer, RedisServer

from server.realtime.limits import Limits


@pytest.fixture(autouse=True)
def game_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`FTM_TEST_DATABASE=postgresql` runs every server test on a fresh PostgreSQL database
    (`make test` runs this folder on both); by default the data directory's SQLite file."""
    if os.environ.get("FTM_TEST_DATABASE") == "postgresql":
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("FTM_DATABASE_URL", server.new_database())


@pytest.fixture
def data_dir(tmp_path: Path, linear_onnx_model: LinearModelFactory) -> Path:
    """A data directory with one model, v1, and nothing else."""
    root = tmp_path / "data"
    root.mkdir()
    add_model(root, "v1", linear_onnx_model(seed=1))
    return root


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def server(
    data_dir: Path, limits: Limits, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ThreadServer]:
    monkeypatch.setenv("FTM_ADMIN_TOKEN", ADMIN_TOKEN)
    with ThreadServer(data_dir, limits) as running:
        yield running


@pytest.fixture
def shared_game(
    tmp_path: Path,
    linear_onnx_model: LinearModelFactory,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SharedGame]:
    """Processes A and B on one data directory (models, rules, MNIST gold), one fresh
    PostgreSQL database and the session's Redis. The test reads the same database (`db_rows`)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    add_model(data_dir, "v1", linear_onnx_model(seed=1))
    prepare(data_dir)
    url = postgres_server.new_database()
    monkeypatch.setenv("FTM_DATABASE_URL", url)
    env = {"FTM_DATABASE_URL": url, "FTM_REDIS_URL": redis_server.url}
    with server_processes([data_dir, data_dir], env, tmp_path) as (a, b):
        yield SharedGame(a, b, data_dir, url)
