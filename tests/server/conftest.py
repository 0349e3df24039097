"""Fixtures for the integration tests: a running server on the data directory (tests/conftest.py;
modules marked `consensus_rules` get the consensus test rules and MNIST gold in it too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from consensus_helpers import prepare
from live_server import ADMIN_TOKEN, SharedGame, ThreadServer, server_processes
from services import PostgresServer, RedisServer

from server.realtime.limits import Limits


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "consensus_rules: the data directory holds consensus_helpers.TEST_RULES and MNIST gold",
    )


@pytest.fixture(autouse=True)
def game_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`FTM_TEST_DATABASE=postgresql` runs every server test on a fresh PostgreSQL database
    (`make test` runs this folder on both); by default the data directory's SQLite file."""
    if os.environ.get("FTM_TEST_DATABASE") == "postgresql":
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("FTM_DATABASE_URL", server.new_database())


@pytest.fixture
def data_dir(data_dir: Path, request: pytest.FixtureRequest) -> Path:
    """Model v1; in a module marked `consensus_rules`, also the consensus test rules (three
    trusted votes settle a claim) and the MNIST gold digits validators warm up on."""
    if request.node.get_closest_marker("consensus_rules"):
        prepare(data_dir)
    return data_dir


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
    data_dir: Path,
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SharedGame]:
    """Processes A and B on one data directory (models, rules, MNIST gold), one fresh
    PostgreSQL database and the session's Redis. The test reads the same database (`db_rows`)."""
    prepare(data_dir)
    url = postgres_server.new_database()
    monkeypatch.setenv("FTM_DATABASE_URL", url)
    env = {"FTM_DATABASE_URL": url, "FTM_REDIS_URL": redis_server.url}
    with server_processes([data_dir, data_dir], env, tmp_path) as (a, b):
        yield SharedGame(a, b, data_dir, url)
