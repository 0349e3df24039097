"""What storage raises, in a module of its own: the interface (base.py) and the SQL it is
written in (sql.py, consensus.py) both need these, and neither may import the other for them."""

from __future__ import annotations


class StorageError(Exception):
    pass


class NameTaken(StorageError):
    pass


class Conflict(StorageError):
    """A write broke a UNIQUE constraint (the same thing stored twice)."""


class RoundNotOpen(StorageError):
    """The round stopped accepting submissions before the write could happen."""


class RoundChanged(StorageError):
    """A round was not in the state the caller expected (someone else moved it first)."""
