"""The repository on PostgreSQL (asyncpg): a connection pool shared by reads and writes.

Every write transaction first takes one transaction-scoped advisory lock, so writers from all
server processes take turns exactly as they do on SQLite. The consensus rules read a claim and
then write it back; with writers in turn no two votes can both read the same old state, and
`score_events.seq` is handed out in commit order, which the leaderboards' fold relies on
(server/validation/leaderboards.py reads the events after the last seq it has seen). Writes are a
few milliseconds each, far below what one lock can carry for a game of this kind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

import asyncpg

from server.storage.base import Conflict
from server.storage.migrations import POSTGRES
from server.storage.sql import Database, Row
from server.storage.sql_repository import SqlRepository
from server.storage.urls import redacted

WRITE_LOCK = 0x46544D  # "FTM": the advisory lock every write transaction holds
MIGRATION_LOCK = WRITE_LOCK + 1


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, …` (the game's SQL has no `?` in literals)."""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as "UPDATE 3" or "INSERT 0 1"."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresDatabase:
    """Over one connection (inside a transaction) or over the pool (each query on its own)."""

    dialect = "postgresql"

    def __init__(self, target: asyncpg.Connection | asyncpg.Pool) -> None:
        self.target = target

    async def fetchone(self, sql: str, params: Iterable[object] = ()) -> Row | None:
        with _conflicts():
            row = await self.target.fetchrow(numbered(sql), *params)
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Iterable[object] = ()) -> list[Row]:
        with _conflicts():
            return [tuple(row) for row in await self.target.fetch(numbered(sql), *params)]

    async def execute(self, sql: str, params: Iterable[object] = ()) -> int:
        with _conflicts():
            return _changed(await self.target.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with _conflicts():
            await self.target.executemany(numbered(sql), [tuple(row) for row in rows])


@contextmanager
def _conflicts() -> Iterator[None]:
    """A broken UNIQUE constraint as `Conflict`."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        raise Conflict(str(error)) from None


async def migrate(connection: asyncpg.Connection) -> int:
    """Apply the migrations this database has not seen; return the schema version."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
        )
        version = await connection.fetchval("SELECT version FROM schema_version")
        if version is None:
            await connection.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0
        if version > len(POSTGRES):
            raise RuntimeError(
                f"the database has schema version {version} but this code knows only "
                f"{len(POSTGRES)}; upgrade fool-the-model"
            )
        # One transaction for all of them: a process starting beside this one waits on the
        # lock and then finds the schema current.
        for number, sql in enumerate(POSTGRES[version:], start=version + 1):
            await connection.execute(sql)
            await connection.execute("UPDATE schema_version SET version = $1", number)
            version = number
    return int(version)


class PostgresRepository(SqlRepository):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(PostgresDatabase(pool))
        self._pool = pool

    @classmethod
    async def open(cls, url: str, pool_size: int = 10) -> PostgresRepository:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size)
        except (OSError, asyncpg.PostgresError) as error:
            raise ConnectionError(
                f"Cannot connect to PostgreSQL at {redacted(url)}: {error}. Check "
                "$FTM_DATABASE_URL and that the server is running."
            ) from None
        try:
            async with pool.acquire() as connection:
                await migrate(connection)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        await self._finish_commits()
        await self._pool.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Database]:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            yield PostgresDatabase(connection)
