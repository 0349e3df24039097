"""Which verified drawings are held out of training: a fixed rule that storage and trainer share.

A drawing is held out when a hash of its attempt id falls in the first `percent` of 100 buckets.
The rule depends on nothing but the id, so it gives the same answer in every process, on every
machine and after every restart, and a drawing never moves between the training and held-out
sets as the game goes on. sha256 (not Python's `hash`, which is salted per process) keeps it so.
"""

from __future__ import annotations

import hashlib


def percent_of(fraction: float) -> int:
    """The rules' `retrain.heldout_fraction` (0.2) as `is_held_out`'s percentage (20): the one
    setting that decides the held-out share (settings refuse fractions that are not whole %)."""
    return round(fraction * 100)


def is_held_out(attempt_id: int, percent: int) -> bool:
    """True when the drawing with `attempt_id` is kept for evaluation and never trained on.
    `percent` comes from the rules (`percent_of(rules.retrain.heldout_fraction)`): no default
    here, so every caller follows the deployment's rules, not the packaged ones."""
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be within 0..100, got {percent}")
    digest = hashlib.sha256(f"heldout:{int(attempt_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent
