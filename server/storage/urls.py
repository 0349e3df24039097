"""Database URLs: `sqlite:///absolute/path` (the default, in the data directory) or
`postgresql://user:password@host:port/database` (also `postgres://`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")


class BadDatabaseUrl(ValueError):
    pass


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///` URL; None for PostgreSQL; `BadDatabaseUrl` for anything else."""
    if url.startswith(SQLITE_PREFIX):
        return Path("/" + url[len(SQLITE_PREFIX) :].lstrip("/"))
    if urlsplit(url).scheme in POSTGRES_SCHEMES:
        return None
    raise BadDatabaseUrl(
        f"Unknown database URL {redacted(url)!r}: use sqlite:///path/to/game.sqlite3 or "
        "postgresql://user:password@host:5432/database."
    )


def redacted(url: str) -> str:
    """`url` with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
