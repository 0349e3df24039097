"""Short-lived synchronous connections, for the command line, the trainer worker and the few
server reads that run in a thread (the registry, training data, exports).

`connect(url)` gives the same `?`-placeholder SQL as server/storage/sql.py over the standard
library's sqlite3 or psycopg (PostgreSQL's synchronous driver; the server's async path uses
asyncpg). Autocommit: each statement is its own transaction, enough for a few rows per job.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from server.storage.base import Conflict, StorageError
from server.storage.urls import redacted, sqlite_path


class MissingDatabase(StorageError):
    pass


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection:
    """`raw` is a sqlite3 or psycopg connection; `conflicts` are its errors that mean a broken
    UNIQUE constraint (for sqlite3, only those whose message says so)."""

    def __init__(self, raw: Any, dialect: str, conflicts: type[Exception]) -> None:
        self.raw = raw
        self.dialect = dialect
        self.conflicts = conflicts

    def execute(self, sql: str, params: Iterable[object] = ()) -> Cursor:
        if self.dialect == "postgresql":
            sql = sql.replace("%", "%%").replace("?", "%s")
        try:
            cursor: Cursor = self.raw.execute(sql, tuple(params))
        except self.conflicts as error:
            if self.dialect == "sqlite" and "UNIQUE" not in str(error):
                raise
            raise Conflict(str(error)) from None
        return cursor


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """A connection to an existing game database (the server creates and migrates it)."""
    path = sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise MissingDatabase(
                f"No game database at {path}: start the server once (`fool-the-model serve`)."
            )
        lite = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            lite.execute("PRAGMA foreign_keys = ON")
            yield Connection(lite, "sqlite", sqlite3.IntegrityError)
        finally:
            lite.close()
        return
    import psycopg  # only deployments on PostgreSQL need it

    try:
        pg = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as error:
        raise MissingDatabase(f"Cannot connect to {redacted(url)}: {error}") from None
    try:
        yield Connection(pg, "postgresql", psycopg.errors.UniqueViolation)
    finally:
        pg.close()
