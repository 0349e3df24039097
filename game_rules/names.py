"""Display names: what a name may be, and when two names are the same name.

Pure rules (no I/O): the server checks a new name with `clean_name` and stores `name_key`, which
is unique, so look-alike names cannot impersonate each other.
"""

from __future__ import annotations

import re
import unicodedata

from game_rules.confusables import PROTOTYPE

NAME_MIN, NAME_MAX = 2, 24
_NAME_CHARS = re.compile(r"[\w .\-]+")  # \w is letters and digits (any script) and `_`
# Characters that show as nothing (Unicode's Default_Ignorable_Code_Point, and the Hangul
# fillers, which are letters to `\w`): a name made of them shows as blank, and one with them
# looks like another name.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


class NameInvalid(ValueError):
    pass


def clean_name(raw: str) -> str:
    """The name as shown: NFKC-normalised (full-width and styled letters become plain ones),
    trimmed, inner runs of spaces kept. Raise `NameInvalid` saying why it cannot be one."""
    name = unicodedata.normalize("NFKC", raw).strip()
    if _INVISIBLE.search(name):
        raise NameInvalid("A name may not contain invisible characters; type it again.")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise NameInvalid(f"A name is {NAME_MIN}–{NAME_MAX} characters long.")
    if not _NAME_CHARS.fullmatch(name):
        raise NameInvalid("A name may use letters, digits, spaces and _ - . only.")
    if not any(char.isalnum() for char in name):
        raise NameInvalid("A name needs at least one letter or digit.")
    return name


def name_key(name: str) -> str:
    """What uniqueness is checked on: names that look alike are the same name.

    The NFKC form, case folded, then each character replaced by the one it looks like (UTS #39's
    confusable skeleton, game_rules/confusables.py): "Admin", "ADMIN", "Аdmin" (Cyrillic А),
    "Ａｄｍｉｎ" and "𝔄𝔡𝔪𝔦𝔫" share one key."""
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", name).casefold())
    return unicodedata.normalize("NFC", "".join(PROTOTYPE.get(char, char) for char in folded))
