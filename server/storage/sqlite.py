"""The repository on one SQLite file (WAL): a writer connection and a reader connection.

Writes go through one connection under a lock, each one transaction: a single statement (atomic
on its own, and one round trip to the database thread, which matters under load) or
`BEGIN IMMEDIATE` … `COMMIT`, so concurrent coroutines never interleave their statements. Reads use
a second connection, which in WAL mode sees the last committed state and never blocks the writer.
`synchronous=FULL`: an acknowledged submission survives a crash of the process and of the machine.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from game_rules.rounds import RoundState
from server.storage.base import (
    NameTaken,
    NewAttempt,
    Player,
    Repository,
    Round,
    RoundChanged,
    RoundNotOpen,
)
from server.storage.consensus import ConsensusStore
from server.storage.migrations import MIGRATIONS

MAX_GROUP = 500  # submissions per group commit (11 SQL parameters each; SQLite allows 32,766)

_ROUND_COLUMNS = """
    r.id, r.number, r.state, r.model_version,
    (SELECT count(*) FROM claims c WHERE c.round_id = r.id AND c.state = 'verified'),
    (SELECT count(*) FROM attempts a WHERE a.round_id = r.id)
"""


async def _connect(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = FULL")
    await db.execute("PRAGMA foreign_keys = ON")
    await db.execute("PRAGMA busy_timeout = 5000")
    return db


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the migrations this database has not seen; return the schema version."""
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT version FROM schema_version") as cursor:
        row = await cursor.fetchone()
    if row is None:
        await db.execute("INSERT INTO schema_version (version) VALUES (0)")
        version = 0
    else:
        version = int(row[0])
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the database has schema version {version} but this code knows only "
            f"{len(MIGRATIONS)}; upgrade fool-the-model"
        )
    for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(
            f"BEGIN IMMEDIATE;\n{sql}\nUPDATE schema_version SET version = {number};\nCOMMIT;"
        )
        version = number
    return version


def _round(row: tuple[Any, ...]) -> Round:
    id_, number, state, model_version, fools, attempts = row
    return Round(
        id=int(id_),
        number=int(number),
        state=RoundState(state),
        model_version=str(model_version),
        fools=int(fools),
        attempts=int(attempts),
    )


class SqliteRepository(Repository):
    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()
        # Group commit: submissions waiting for the next transaction, and the task writing them.
        self._waiting: list[tuple[NewAttempt, asyncio.Future[int]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> SqliteRepository:
        writer = await _connect(path)
        try:
            await migrate(writer)
            reader = await _connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader)

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer
        await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def _one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
        async with self._reader.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return tuple(row) if row is not None else None

    async def ping(self) -> None:
        await self._one("SELECT 1")

    @asynccontextmanager
    async def consensus(self) -> AsyncIterator[ConsensusStore]:
        async with self._transaction() as db:
            yield ConsensusStore(db)

    def consensus_reads(self) -> ConsensusStore:
        return ConsensusStore(self._reader)

    async def create_player(self, name: str, name_key: str, token_hash: str) -> Player:
        try:
            async with self._lock:  # one statement: atomic on its own
                cursor = await self._writer.execute(
                    "INSERT INTO players (name, name_key, token_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, name_key, token_hash, time.time()),
                )
                player_id = cursor.lastrowid
        except sqlite3.IntegrityError as error:
            if "name_key" in str(error):
                raise NameTaken(name) from None
            raise
        assert player_id is not None
        return Player(id=player_id, name=name)

    async def player_by_token_hash(self, token_hash: str) -> Player | None:
        row = await self._one("SELECT id, name FROM players WHERE token_hash = ?", (token_hash,))
        return Player(id=int(row[0]), name=str(row[1])) if row else None

    async def rounds(self) -> list[Round]:
        async with self._reader.execute(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r ORDER BY r.number DESC"
        ) as cursor:
            return [_round(tuple(row)) async for row in cursor]

    async def round(self, round_id: int) -> Round | None:
        row = await self._one(f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.id = ?", (round_id,))
        return _round(row) if row else None

    async def create_round(self, model_version: str, open_now: bool = False) -> Round:
        now = time.time()
        state = RoundState.OPEN if open_now else RoundState.SCHEDULED
        async with self._transaction() as db:
            if open_now:
                await db.execute("UPDATE rounds SET state = 'closing' WHERE state = 'open'")
            cursor = await db.execute(
                "INSERT INTO rounds (number, state, model_version, created_at, opened_at) "
                "VALUES ((SELECT coalesce(max(number), 0) + 1 FROM rounds), ?, ?, ?, ?)",
                (str(state), model_version, now, now if open_now else None),
            )
            round_id = cursor.lastrowid
        assert round_id is not None
        created = await self.round(round_id)
        assert created is not None
        return created

    async def move_round(self, round_id: int, expected: RoundState, target: RoundState) -> Round:
        now = time.time()
        async with self._transaction() as db:
            if target is RoundState.OPEN:
                await db.execute(
                    "UPDATE rounds SET state = 'closing' WHERE state = 'open' AND id != ?",
                    (round_id,),
                )
            cursor = await db.execute(
                "UPDATE rounds SET state = ?,"
                " opened_at = CASE WHEN ? = 'open' THEN ? ELSE opened_at END,"
                " closed_at = CASE WHEN ? = 'closed' THEN ? ELSE closed_at END "
                "WHERE id = ? AND state = ?",
                (str(target), str(target), now, str(target), now, round_id, str(expected)),
            )
            if cursor.rowcount != 1:
                raise RoundChanged(f"round {round_id} is no longer {expected}")
        moved = await self.round(round_id)
        assert moved is not None
        return moved

    async def add_attempt(self, attempt: NewAttempt) -> int:
        """Wait for the next group commit to store `attempt` (see `_commit_waiting`)."""
        stored: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((attempt, stored))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        return await stored

    async def _commit_waiting(self) -> None:
        """Store every waiting submission in one transaction (one fsync), until none wait.

        Under load, committing each submission on its own costs an fsync and a few round trips
        to the database thread apiece; one transaction for all who arrived meanwhile costs the
        same for any number of them. Each caller hears back only after COMMIT.
        """
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                ids = await self._insert_attempts([attempt for attempt, _ in batch])
            except Exception as error:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
                continue
            for (attempt, stored), attempt_id in zip(batch, ids, strict=True):
                if stored.done():
                    continue
                if attempt_id is None:
                    stored.set_exception(RoundNotOpen(f"round {attempt.round_id} is not open"))
                else:
                    stored.set_result(attempt_id)

    async def _insert_attempts(self, attempts: list[NewAttempt]) -> list[int | None]:
        """Insert the attempts whose round is open (claims follow by trigger); their ids in
        order, None for the others."""
        now = time.time()
        async with self._transaction() as db:
            async with db.execute("SELECT id FROM rounds WHERE state = 'open'") as cursor:
                row = await cursor.fetchone()
            open_round = row[0] if row else None
            accepted = [a for a in attempts if a.round_id == open_round]
            last_id = 0
            if accepted:
                rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(accepted))
                values = [
                    value
                    for a in accepted
                    for value in (
                        a.player_id,
                        a.round_id,
                        now,
                        a.strokes_json,
                        a.png,
                        a.image,
                        a.label,
                        a.predicted,
                        json.dumps(a.probs),
                        a.model_version,
                        "pending" if a.fooled else "model_won",
                    )
                ]
                cursor = await db.execute(
                    "INSERT INTO attempts (player_id, round_id, created_at, strokes, png, image,"
                    f" label, predicted, probs, model_version, outcome) VALUES {rows}",
                    values,
                )
                assert cursor.lastrowid is not None
                last_id = cursor.lastrowid
        # Rows of one INSERT get consecutive ids (each is one past the largest so far, and we
        # hold the write lock), so the last id gives all of them.
        ids = iter(range(last_id - len(accepted) + 1, last_id + 1))
        return [next(ids) if a.round_id == open_round else None for a in attempts]
