"""Player identity: display-name rules and secret tokens (only their hashes are stored)."""

from __future__ import annotations

import hashlib
import re
import secrets

NAME_MIN, NAME_MAX = 2, 24
_NAME_CHARS = re.compile(r"[\w .\-]+")  # \w is letters and digits (any script) and `_`


class NameInvalid(ValueError):
    pass


def clean_name(raw: str) -> str:
    """The name as shown (trimmed, inner runs of spaces kept); raise `NameInvalid` saying why."""
    name = raw.strip()
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise NameInvalid(f"A name is {NAME_MIN}–{NAME_MAX} characters long.")
    if not _NAME_CHARS.fullmatch(name):
        raise NameInvalid("A name may use letters, digits, spaces and _ - . only.")
    return name


def name_key(name: str) -> str:
    """What uniqueness is checked on: names differing only in case are the same name."""
    return name.casefold()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    # Tokens are long random strings, so a plain (unsalted) hash is enough to make a stolen
    # database useless for logging in, and it keeps lookup a single indexed query.
    return hashlib.sha256(token.encode()).hexdigest()
