"""The repository on its own, on SQLite and on PostgreSQL (`database_url` runs each test on both):
migrations, constraints, one transaction per write, group commits."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from consensus_helpers import new_attempt

from game_rules.rounds import RoundState
from server.storage import (
    Conflict,
    NameTaken,
    NewAttempt,
    RoundChanged,
    RoundNotOpen,
    SqliteRepository,
    open_repository,
)
from server.storage.migrations import POSTGRES, SQLITE
from server.storage.sql import Database
from server.storage.sql_repository import SqlRepository
from server.storage.sync import connect


async def test_migrations_apply_once(database_url: str) -> None:
    repo = await open_repository(database_url)
    await repo.close()
    repo = await open_repository(database_url)  # a second open applies nothing twice
    await repo.close()
    with connect(database_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(SQLITE),)]


async def test_servers_starting_at_once_migrate_one_after_the_other(database_url: str) -> None:
    opened = await asyncio.gather(
        *(open_repository(database_url) for _ in range(3)), return_exceptions=True
    )
    for repo in opened:
        if not isinstance(repo, BaseException):
            await repo.close()
    assert not [error for error in opened if isinstance(error, BaseException)]
    with connect(database_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(SQLITE),)]


def test_every_migration_has_a_postgresql_twin_with_the_same_tables() -> None:
    assert len(POSTGRES) == len(SQLITE)
    for lite, pg in zip(SQLITE, POSTGRES, strict=True):
        tables = [re.findall(r"CREATE TABLE (\w+)", sql) for sql in (lite, pg)]
        indexes = [re.findall(r"CREATE (?:UNIQUE )?INDEX (\w+)", sql) for sql in (lite, pg)]
        triggers = [re.findall(r"CREATE TRIGGER (\w+)", sql) for sql in (lite, pg)]
        assert tables[0] == tables[1] and indexes[0] == indexes[1]
        assert triggers[0] == triggers[1]


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "game.sqlite3"
    repo = await open_repository(f"sqlite:///{path}")
    assert isinstance(repo, SqliteRepository)
    await repo.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_writes_are_checked_and_atomic(database_url: str) -> None:
    repo = await open_repository(database_url)
    try:
        ada = await repo.create_player("Ada", "ada", "h1")
        with pytest.raises(NameTaken):
            await repo.create_player("ADA", "ada", "h2")
        assert await repo.player_by_token_hash("h1") == ada
        assert await repo.player_by_token_hash("h2") is None

        first = await repo.create_round("v1", open_now=True)
        second = await repo.create_round("v2")
        assert (first.state, second.state) == (RoundState.OPEN, RoundState.SCHEDULED)

        fooled = await repo.add_attempt(new_attempt(ada.id, first.id, label=7, predicted=1))
        await repo.add_attempt(new_attempt(ada.id, first.id, label=7, predicted=7))
        with pytest.raises(RoundNotOpen):
            await repo.add_attempt(new_attempt(ada.id, second.id, label=7, predicted=1))
        with pytest.raises(Exception, match=r"(?i)foreign key"):  # foreign keys are enforced
            await repo.add_attempt(new_attempt(999, first.id, label=7, predicted=1))

        # Opening round 2 moves round 1 to closing in the same transaction.
        opened = await repo.move_round(second.id, RoundState.SCHEDULED, RoundState.OPEN)
        assert opened.state is RoundState.OPEN
        with pytest.raises(RoundChanged):
            await repo.move_round(second.id, RoundState.SCHEDULED, RoundState.OPEN)
        states = {r.number: r.state for r in await repo.rounds()}
        assert states == {1: RoundState.CLOSING, 2: RoundState.OPEN}
        assert (await repo.round(first.id)).attempts == 2  # type: ignore[union-attr]
    finally:
        await repo.close()

    with connect(database_url) as db:
        assert db.execute("SELECT attempt_id, state FROM claims").fetchall() == [
            (fooled, "pending")
        ]
        assert db.execute("SELECT count(*) FROM attempts").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM score_events").fetchone() == (2,)
        with pytest.raises(Conflict):  # never two open rounds
            db.execute("UPDATE rounds SET state = 'open'")


async def test_a_write_cancelled_on_its_way_leaves_no_transaction_open(database_url: str) -> None:
    """A caller cancelled while its transaction's first statement is at the database (on SQLite,
    with the BEGIN that rides along) leaves the connection out of any transaction: the next
    write commits."""
    repo = await open_repository(database_url)
    try:
        for n in range(20):
            started = asyncio.Event()

            async def gone(n: int = n, started: asyncio.Event = started) -> None:
                started.set()  # (no wait here: the write goes on to its first statement)
                await repo.create_player(f"Gone {n}", f"gone {n}", f"g{n}")

            write = asyncio.create_task(gone())
            await started.wait()  # under way: its first statement sent
            write.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await write
        ada = await repo.create_player("Ada", "ada", "h1")
        assert await repo.player_by_token_hash("h1") == ada
    finally:
        await repo.close()
    with connect(database_url) as db:
        assert db.execute("SELECT name FROM players WHERE name = 'Ada'").fetchall() == [("Ada",)]


async def test_a_resend_in_a_group_commit_gets_the_original_id(database_url: str) -> None:
    """Resends caught by the group commit itself (the submission's own check ran before the
    original was stored): stored before, twice in one group, and among new ones."""
    repo = await open_repository(database_url)
    try:
        ada = await repo.create_player("Ada", "ada", "h1")
        grace = await repo.create_player("Grace", "grace", "h2")
        opened = await repo.create_round("v1", open_now=True)

        def attempt(player: int, request: str, label: int = 7) -> NewAttempt:
            made = new_attempt(player, opened.id, label=label, predicted=1)
            return replace(made, request=request, fingerprint=f"{request}-{label}")

        original = await repo.add_attempt(attempt(ada.id, "s1"))
        ids = await asyncio.gather(
            repo.add_attempt(attempt(ada.id, "s1")),  # stored before
            repo.add_attempt(attempt(ada.id, "s2")),  # new, twice in this group
            repo.add_attempt(attempt(ada.id, "s2")),
            repo.add_attempt(attempt(grace.id, "s1")),  # the same id, another player: new
            repo.add_attempt(attempt(ada.id, "s1", label=3)),  # the id reused: new
        )
    finally:
        await repo.close()
    again, new, new_again, theirs, reused = ids
    assert again == original and new == new_again
    assert len({original, new, theirs, reused}) == 4
    with connect(database_url) as db:
        assert db.execute("SELECT count(*) FROM attempts").fetchone() == (4,)


async def test_concurrent_submissions_share_a_commit_and_keep_their_own_ids(
    database_url: str,
) -> None:
    repo = await open_repository(database_url)
    try:
        ada = await repo.create_player("Ada", "ada", "h1")
        closed = await repo.create_round("v1")  # scheduled: accepts nothing
        current = await repo.create_round("v1", open_now=True)
        attempts = [
            new_attempt(ada.id, closed.id if i % 5 == 0 else current.id, label=i % 10, predicted=3)
            for i in range(40)
        ]
        results = await asyncio.gather(
            *(repo.add_attempt(a) for a in attempts), return_exceptions=True
        )
    finally:
        await repo.close()

    refused = [i for i, r in enumerate(results) if isinstance(r, RoundNotOpen)]
    assert refused == list(range(0, 40, 5))
    with connect(database_url) as db:
        stored = dict(db.execute("SELECT id, label FROM attempts").fetchall())
        claimed = {row[0] for row in db.execute("SELECT attempt_id FROM claims")}
    accepted = {r: attempts[i].label for i, r in enumerate(results) if isinstance(r, int)}
    assert stored == accepted  # every id answered is the row with that submission's label
    assert claimed == {i for i, label in accepted.items() if label != 3}


async def test_a_write_that_fails_midway_stores_nothing(database_url: str) -> None:
    """A transaction's work that raises after a statement is rolled back, whole."""
    repo = await open_repository(database_url)

    async def half_then_fail(db: Database) -> None:
        await db.execute(
            "INSERT INTO players (name, name_key, token_hash, created_at) VALUES (?, ?, ?, 0)",
            ("Half", "half", "h0"),
        )
        raise ValueError("broken on the way")

    assert isinstance(repo, SqlRepository)
    try:
        with pytest.raises(ValueError, match="broken on the way"):
            await repo._write(half_then_fail)
        ada = await repo.create_player("Ada", "ada", "h1")  # the next write commits
    finally:
        await repo.close()
    with connect(database_url) as db:
        assert db.execute("SELECT id, name FROM players").fetchall() == [(ada.id, "Ada")]


async def test_a_group_commit_is_one_trip_to_the_sqlite_thread(tmp_path: Path) -> None:
    """Every statement of a submission's group commit runs in one call on the writer's thread
    (each trip wakes that thread and then the event loop)."""
    repo = await open_repository(f"sqlite:///{tmp_path / 'game.sqlite3'}")
    assert isinstance(repo, SqliteRepository)
    try:
        ada = await repo.create_player("Ada", "ada", "h1")
        opened = await repo.create_round("v1", open_now=True)
        trips = 0
        execute = repo._writer._execute

        async def counted(fn: Any, *args: Any) -> Any:
            nonlocal trips
            trips += 1
            return await execute(fn, *args)

        repo._writer._execute = counted  # type: ignore[method-assign]
        attempts = [
            replace(new_attempt(ada.id, opened.id, label=7, predicted=1), request=f"s{n}")
            for n in range(3)
        ]
        ids = await asyncio.gather(*(repo.add_attempt(a) for a in attempts))
        assert trips == 1 and len(set(ids)) == 3
    finally:
        await repo.close()


async def test_a_one_trip_write_may_await_only_its_statements(tmp_path: Path) -> None:
    """On SQLite the work runs on the connection's thread, where nothing else can be awaited:
    it is refused, and what it wrote is rolled back."""
    repo = await open_repository(f"sqlite:///{tmp_path / 'game.sqlite3'}")

    async def insert_then_wait(db: Database) -> None:
        await db.execute(
            "INSERT INTO players (name, name_key, token_hash, created_at) VALUES (?, ?, ?, 0)",
            ("Wait", "wait", "h0"),
        )
        await asyncio.sleep(0)

    try:
        assert isinstance(repo, SqliteRepository)
        with pytest.raises(RuntimeError, match="awaited something other than its statements"):
            await repo._write(insert_then_wait)
        await repo.create_player("Ada", "ada", "h1")
    finally:
        await repo.close()
    with connect(f"sqlite:///{tmp_path / 'game.sqlite3'}") as db:
        assert db.execute("SELECT name FROM players").fetchall() == [("Ada",)]
