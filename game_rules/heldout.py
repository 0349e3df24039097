"""Which drawings are held out of training: a fixed rule that storage, trainer and benchmark share.

A drawing is judged by its content, not by when it arrived: its key is the sha256 of its pixels
(`content_key`), so the same drawings give the same split whatever order concurrent players sent
them in, in every process and on every machine (Python's `hash` is salted per process; sha256
is not). Identical drawings get the same key and so land on the same side: a copy of a held-out
drawing is never trained on.

A drawing is held out when its key falls in the first `percent` of 100 buckets — but never more
than `percent` of the distinct drawings (rounded down, smallest keys first), so a handful of
drawings is never all held out: 2 drawings at 20% hold out none, 10 at most 2. As drawings
arrive the cap grows and the split settles into the bucket rule; near the cap a drawing can
change side, which is why a model is judged on the held-out set of its own job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def percent_of(fraction: float) -> int:
    """The rules' `retrain.heldout_fraction` (0.2) as `held_out`'s percentage (20): the one
    setting that decides the held-out share (settings refuse fractions that are not whole %)."""
    return round(fraction * 100)


def content_key(image: np.ndarray) -> str:
    """The drawing's key: sha256 of its 28×28 pixels as little-endian float32 (as stored)."""
    pixels = np.ascontiguousarray(np.asarray(image, dtype="<f4"))
    return hashlib.sha256(pixels.tobytes()).hexdigest()


def held_out(keys: Sequence[str], percent: int) -> list[bool]:
    """For each drawing (by `content_key`), whether it is kept for evaluation, never trained on.
    `percent` comes from the rules (`percent_of(rules.retrain.heldout_fraction)`): no default
    here, so every caller follows the deployment's rules, not the packaged ones."""
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be within 0..100, got {percent}")
    distinct = sorted(set(keys))
    in_bucket = [key for key in distinct if _bucket(key) < percent]
    cap = len(distinct) * percent // 100
    chosen = set(in_bucket[:cap])
    return [key in chosen for key in keys]


def learns_from_players(train_count: int, minimum: int) -> bool:
    """Whether a retrain with `train_count` foolings to train on uses the players' drawings at
    all (`retrain.min_train_drawings`): a few drawings teach the model nothing but noise."""
    return train_count >= minimum


def _bucket(key: str) -> int:
    digest = hashlib.sha256(f"heldout:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100
