"""One pseudonym per player, the same in every export (drawings, votes): HMAC-SHA256 of the
player id with the deployment's secret salt, so exports join on it and reveal nothing outside."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SALT_BYTES = 32


def anonymous_player_id(player_id: int, salt: bytes) -> str:
    """A stable pseudonym for a player: HMAC-SHA256(salt, id), 16 hex digits."""
    return hmac.new(salt, str(int(player_id)).encode(), hashlib.sha256).hexdigest()[:16]


def load_or_create_salt(path: Path) -> bytes:
    """The deployment's secret salt, created (readable by its owner only) on first use."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SALT_BYTES))
    except FileExistsError:
        pass  # made earlier (or just now by another process): use it
    salt = path.read_bytes()
    if len(salt) < 16:
        raise ValueError(f"the salt file {path} is too short; delete it to make a new one")
    return salt
