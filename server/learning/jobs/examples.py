"""Drawings handed to the trainer: one `.npz` format for the training extras and the held-out sets.

The server writes an `ExampleSet` (numpy only, no torch), the trainer process reads it back. Each
drawing is the 28×28 float image the model saw (white ink on black, [0, 1]), its consensus label,
a training weight (the consensus strength), the number of the round it was drawn in, and whether
it fooled the model (a verified fooling) or the model read it right (the drawer's label; these
are replayed in training and, held out, show whether a candidate still reads ordinary drawings).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.atomic import atomic_write

FIELDS = ("images", "labels", "weights", "rounds", "fooled")


class ExampleFileError(ValueError):
    """An examples file that is missing, unreadable or malformed."""


@dataclass(frozen=True)
class ExampleSet:
    images: np.ndarray  # float32 [N, 28, 28] in [0, 1]
    labels: np.ndarray  # int64 [N], 0..9
    weights: np.ndarray  # float64 [N], finite, >= 0
    rounds: np.ndarray  # int64 [N], the round number each drawing came from
    fooled: np.ndarray  # bool [N]: a verified fooling; False: the model read it right

    @classmethod
    def of(
        cls,
        images: np.ndarray | list[np.ndarray],
        labels: np.ndarray | list[int],
        weights: np.ndarray | list[float] | None = None,
        rounds: np.ndarray | list[int] | None = None,
        fooled: np.ndarray | list[bool] | None = None,
    ) -> ExampleSet:
        """Build and check a set; uint8 images (0..255) are scaled to [0, 1]. Drawings are
        foolings unless `fooled` says otherwise."""
        pixels = np.asarray(images)
        if pixels.dtype == np.uint8:
            pixels = pixels.astype(np.float32) / 255.0
        pixels = pixels.astype(np.float32).reshape(-1, 28, 28) if pixels.size == 0 else pixels
        n = len(pixels)
        return cls(
            images=np.asarray(pixels, dtype=np.float32),
            labels=np.asarray(labels, dtype=np.int64).reshape(-1),
            weights=np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64),
            rounds=np.zeros(n, np.int64) if rounds is None else np.asarray(rounds, dtype=np.int64),
            fooled=np.ones(n, bool) if fooled is None else np.asarray(fooled, dtype=bool),
        )

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.shape[1:] != (28, 28) or self.images.ndim != 3:
            raise ExampleFileError(f"images must be [N,28,28], got {list(self.images.shape)}")
        for name in FIELDS[1:]:
            if getattr(self, name).shape != (n,):
                raise ExampleFileError(f"{name} must have one entry per image ({n})")
        if not (np.isfinite(self.images).all() and ((self.images >= 0) & (self.images <= 1)).all()):
            raise ExampleFileError("image pixels must be finite and within [0, 1]")
        if n and not ((self.labels >= 0) & (self.labels <= 9)).all():
            raise ExampleFileError("labels must be digits 0..9")
        if not (np.isfinite(self.weights).all() and (self.weights >= 0).all()):
            raise ExampleFileError("weights must be finite and >= 0")

    def __len__(self) -> int:
        return len(self.labels)

    def where(self, keep: np.ndarray) -> ExampleSet:
        return ExampleSet(*(getattr(self, name)[keep] for name in FIELDS))

    def of_round(self, number: int) -> ExampleSet:
        return self.where(self.rounds == number)

    def foolings(self) -> ExampleSet:
        return self.where(self.fooled)

    def read_right(self) -> ExampleSet:
        """The drawings the model read right when they were drawn."""
        return self.where(~self.fooled)

    def round_numbers(self) -> list[int]:
        return sorted({int(r) for r in self.rounds})

    def __add__(self, other: ExampleSet) -> ExampleSet:
        return ExampleSet(*(np.concatenate([getattr(self, n), getattr(other, n)]) for n in FIELDS))

    def save(self, path: Path) -> Path:
        """Write to `path` atomically (temporary file, then rename)."""
        path = Path(path)
        with atomic_write(path, binary=True) as f:
            np.savez(f, **{name: getattr(self, name) for name in FIELDS})
        return path

    @classmethod
    def load(cls, path: Path) -> ExampleSet:
        try:
            with np.load(Path(path), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in FIELDS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ExampleFileError(f"cannot read examples file {path}: {exc}") from exc
        if arrays["images"].dtype != np.float32:
            raise ExampleFileError(f"{path}: images must be float32, got {arrays['images'].dtype}")
        return cls.of(**arrays)
