"""The repository on one SQLite file (WAL): a writer connection and a reader connection.

Writes go through one connection under a lock, each in `BEGIN IMMEDIATE` … `COMMIT`, so
concurrent coroutines never interleave their statements (and other processes on the same file
wait for SQLite's write lock). Reads use a second connection, which in WAL mode sees the last
committed state and never blocks the writer. `synchronous=FULL`: an acknowledged submission
survives a crash of the process and of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from server.storage.migrations import SQLITE
from server.storage.sql import Database, SqliteDatabase, T, transaction_in_one_trip
from server.storage.sql_repository import SqlRepository


async def _connect(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        await db.close()  # an open connection's thread would keep the process from exiting
        raise
    return db


@contextlib.asynccontextmanager
async def _migration_lock(path: Path) -> AsyncIterator[None]:
    """Servers starting at once on one file migrate one after the other (waiting in a thread,
    so that other coroutines of this process keep running)."""
    with open(path.with_name(path.name + ".migrating"), "a") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        yield


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the migrations this database has not seen; return the schema version."""
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT version FROM schema_version") as cursor:
        row = await cursor.fetchone()
    if row is None:
        await db.execute("INSERT INTO schema_version (version) VALUES (0)")
    version = int(row[0]) if row else 0
    if version > len(SQLITE):
        raise RuntimeError(
            f"the database has schema version {version} but this code knows only "
            f"{len(SQLITE)}; upgrade fool-the-model"
        )
    for number, sql in enumerate(SQLITE[version:], start=version + 1):
        await db.executescript(
            f"BEGIN IMMEDIATE;\n{sql}\nUPDATE schema_version SET version = {number};\nCOMMIT;"
        )
        version = number
    return version


class SqliteRepository(SqlRepository):
    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        super().__init__(SqliteDatabase(reader))
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteRepository:
        writer = await _connect(path)
        try:
            async with _migration_lock(path):
                # Switching to WAL needs the file to itself (the busy timeout does not apply),
                # so it happens here, one server at a time; the mode then stays with the file.
                await writer.execute("PRAGMA journal_mode = WAL")
                await migrate(writer)
            reader = await _connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader)

    async def close(self) -> None:
        await self._finish_commits()
        await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Database]:
        async with self._lock:
            db = SqliteDatabase(self._writer, begin="BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.begun:
                    await db.rollback()
                raise
            if db.begun:
                await db.execute("COMMIT")

    async def _write(self, work: Callable[[Database], Awaitable[T]]) -> T:
        async with self._lock:
            return await transaction_in_one_trip(self._writer, "BEGIN IMMEDIATE", work)
