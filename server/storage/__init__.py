"""Storage: the `Repository` interface and its implementations, SQLite and PostgreSQL."""

from server.storage.base import (
    Conflict,
    NameTaken,
    NewAttempt,
    Player,
    Repository,
    Round,
    RoundChanged,
    RoundNotOpen,
    StorageError,
)
from server.storage.sqlite import SqliteRepository
from server.storage.urls import sqlite_path

__all__ = [
    "Conflict",
    "NameTaken",
    "NewAttempt",
    "Player",
    "Repository",
    "Round",
    "RoundChanged",
    "RoundNotOpen",
    "SqliteRepository",
    "StorageError",
    "open_repository",
]


async def open_repository(url: str) -> Repository:
    """Open (creating and migrating as needed) the game database at `url`: `sqlite:///path`
    or `postgresql://…` (server/storage/urls.py)."""
    path = sqlite_path(url)
    if path is not None:
        return await SqliteRepository.open(path)
    from server.storage.postgres import PostgresRepository  # needs the `scale` extra

    return await PostgresRepository.open(url)
