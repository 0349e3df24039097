"""One small async interface over the two databases, so the game's SQL is written once.

The repository and the consensus store speak `Database`: SQL with `?` placeholders, rows that
index like tuples, and `Conflict` for a broken UNIQUE constraint. `SqliteDatabase` wraps an
aiosqlite connection; `PostgresDatabase` (server/storage/postgres.py, so that asyncpg is only
imported where PostgreSQL is used) wraps an asyncpg connection or pool. The SQL itself sticks
to what both understand (`INSERT … ON CONFLICT`, `RETURNING`, `coalesce`); the schemas differ
only in server/storage/migrations.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import aiosqlite

from server.storage.errors import Conflict

Row = Sequence[Any]


class Database(Protocol):
    dialect: str  # "sqlite" or "postgresql"

    async def fetchone(self, sql: str, params: Iterable[object] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Iterable[object] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Iterable[object] = ()) -> int:
        """Run one statement; return how many rows it changed."""

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection

    async def fetchone(self, sql: str, params: Iterable[object] = ()) -> Row | None:
        with _conflicts():
            async with self.connection.execute(sql, tuple(params)) as cursor:
                row = await cursor.fetchone()
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Iterable[object] = ()) -> list[Row]:
        with _conflicts():
            async with self.connection.execute(sql, tuple(params)) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]

    async def execute(self, sql: str, params: Iterable[object] = ()) -> int:
        with _conflicts():
            async with self.connection.execute(sql, tuple(params)) as cursor:
                return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with _conflicts():
            await self.connection.executemany(sql, [tuple(row) for row in rows])


@contextmanager
def _conflicts() -> Iterator[None]:
    """A broken UNIQUE constraint as `Conflict`; other integrity errors as they are."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "UNIQUE" not in str(error):
            raise
        raise Conflict(str(error)) from None
