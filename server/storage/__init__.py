"""Storage: the `Repository` interface and its implementations (SQLite today)."""

from pathlib import Path

from server.storage.base import (
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

__all__ = [
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


async def open_repository(path: Path) -> Repository:
    """Open (creating and migrating as needed) the game database at `path`."""
    return await SqliteRepository.open(path)
