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
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any, Protocol, TypeVar

import aiosqlite

from server.storage.errors import Conflict

Row = Sequence[Any]
T = TypeVar("T")


class Database(Protocol):
    dialect: str  # "sqlite" or "postgresql"

    async def fetchone(self, sql: str, params: Iterable[object] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Iterable[object] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Iterable[object] = ()) -> int:
        """Run one statement; return how many rows it changed."""

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...


class _SqliteStatements:
    """`Database` for SQLite, given how a statement runs (`_run`)."""

    dialect = "sqlite"

    async def fetchone(self, sql: str, params: Iterable[object] = ()) -> Row | None:
        row = await self._run(_fetchone, sql, tuple(params))
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Iterable[object] = ()) -> list[Row]:
        rows: list[Row] = await self._run(_fetchall, sql, tuple(params))
        return rows

    async def execute(self, sql: str, params: Iterable[object] = ()) -> int:
        count: int = await self._run(_execute, sql, tuple(params))
        return count

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._run(_executemany, sql, [tuple(row) for row in rows])

    async def _run(self, statement: Callable[..., Any], sql: str, params: object) -> Any:
        raise NotImplementedError


class SqliteDatabase(_SqliteStatements):
    """A statement is one trip to the connection's thread and back.

    aiosqlite's cursor API takes three (the statement, its rows, closing the cursor), and each
    trip wakes that thread and then the event loop: with a submission's handful of statements,
    those trips were a good part of the event loop's time under load. So each statement runs as
    one function on the connection's thread, through aiosqlite's `_execute` and `_conn`: private
    names, hence the version range in pyproject.toml (every test on SQLite goes through here).

    A transaction's `begin` statement rides along with its first statement, one trip less per
    transaction; `begun` says whether it was sent (else there is nothing to commit or roll back).
    `transaction_in_one_trip` runs a whole transaction in one trip.
    """

    def __init__(self, connection: aiosqlite.Connection, begin: str | None = None) -> None:
        self.connection = connection
        self._begin = begin
        self.begun = False

    async def _run(self, statement: Callable[..., Any], sql: str, params: object) -> Any:
        begin, self._begin = self._begin, None
        with _conflicts():
            if begin is None:
                return await self.connection._execute(statement, self.connection._conn, sql, params)
            self.begun = True
            return await self.connection._execute(
                _begin_then, begin, statement, self.connection._conn, sql, params
            )

    async def rollback(self) -> None:
        """Roll the transaction back if it is open. (Its `begin` may have failed, or, for a
        caller cancelled meanwhile, still be on its way: this runs after it, on the same
        thread, and looks.)"""
        await self.connection._execute(_rollback_if_open, self.connection._conn)


async def transaction_in_one_trip(
    connection: aiosqlite.Connection, begin: str, work: Callable[[Database], Awaitable[T]]
) -> T:
    """`work`'s statements as one transaction, run whole on the connection's thread: one trip,
    however many statements (a submission's group commit has five).

    `work` is written as for any `Database` (the same code serves PostgreSQL) but may await
    nothing except its statements: there, each completes at once, so the coroutine runs to its
    end without suspending, driven by the thread. If it raises, the transaction is rolled back.
    A caller cancelled meanwhile does not stop it."""
    result: T = await connection._execute(_transaction_here, connection._conn, begin, work)
    return result


class _SqliteHere(_SqliteStatements):
    """`Database` on its connection's own thread: each statement runs at once, never waits."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def _run(self, statement: Callable[..., Any], sql: str, params: object) -> Any:
        with _conflicts():
            return statement(self._connection, sql, params)


# These run on the connection's thread.


def _begin_then(
    begin: str,
    statement: Callable[..., Any],
    connection: sqlite3.Connection,
    sql: str,
    params: object,
) -> Any:
    connection.execute(begin).close()
    return statement(connection, sql, params)


def _rollback_if_open(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK").close()


def _transaction_here(
    connection: sqlite3.Connection, begin: str, work: Callable[[Database], Awaitable[T]]
) -> T:
    connection.execute(begin).close()
    try:
        result = _to_the_end(work(_SqliteHere(connection)))
    except BaseException:
        _rollback_if_open(connection)
        raise
    connection.execute("COMMIT").close()
    return result


def _to_the_end(work: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (its statements complete at once) to its result."""
    assert isinstance(work, Coroutine)
    try:
        work.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    work.close()
    raise RuntimeError("a one-trip transaction awaited something other than its statements")


def _fetchone(connection: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> Any:
    with closing(connection.execute(sql, params)) as cursor:
        return cursor.fetchone()


def _fetchall(connection: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[Row]:
    with closing(connection.execute(sql, params)) as cursor:
        return [tuple(row) for row in cursor.fetchall()]


def _execute(connection: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> int:
    with closing(connection.execute(sql, params)) as cursor:
        return cursor.rowcount


def _executemany(connection: sqlite3.Connection, sql: str, rows: list[tuple[object, ...]]) -> None:
    connection.executemany(sql, rows).close()


@contextmanager
def _conflicts() -> Iterator[None]:
    """A broken UNIQUE constraint as `Conflict`; other integrity errors as they are."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "UNIQUE" not in str(error):
            raise
        raise Conflict(str(error)) from None
