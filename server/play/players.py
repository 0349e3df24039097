"""Player identity: secret tokens (only their hashes are stored). The display-name rules are
game_rules/names.py."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    # Tokens are long random strings, so a plain (unsalted) hash is enough to make a stolen
    # database useless for logging in, and it keeps lookup a single indexed query.
    return hashlib.sha256(token.encode()).hexdigest()
