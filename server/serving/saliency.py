"""Where the model looked: occlusion sensitivity, numpy only (no torch in the serving process).

Slide a black patch over the 28×28 input; wherever covering the ink lowers the probability of the
class the model guessed, that region mattered. Every occluded copy, and the input itself, go to
the model in ONE batch: a map costs one session run, however many patches there are. A patch
over no ink would leave the input unchanged (the background is black already): it is skipped,
which halves the batch for a typical digit without changing the map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PATCH = 6  # pixels: about two strokes wide on the 28×28 input
STRIDE = 2
_STARTS = range(0, 28 - PATCH + 1, STRIDE)
CORNERS = [(row, col) for row in _STARTS for col in _STARTS]  # 144 patches at most


def _coverage() -> np.ndarray:
    covered = np.zeros((28, 28))
    for row, col in CORNERS:
        covered[row : row + PATCH, col : col + PATCH] += 1
    return covered


COVERED = _coverage()  # how many patches cover each pixel (each at least one)


@dataclass(frozen=True)
class Saliency:
    probs: np.ndarray  # [10]: the model's answer for the input itself
    label: int
    heatmap: np.ndarray  # [28, 28] float32 in [0, 1]: 1 where covering hurt the guess most


def inked(image: np.ndarray) -> list[tuple[int, int]]:
    """The corners of the patches that cover some ink."""
    return [(r, c) for r, c in CORNERS if image[r : r + PATCH, c : c + PATCH].any()]


def occluded(image: np.ndarray, corners: list[tuple[int, int]]) -> np.ndarray:
    """The input, then one copy per patch with that patch blacked out: [1 + patches, 28, 28]."""
    batch = np.repeat(image[None].astype(np.float32), 1 + len(corners), axis=0)
    for index, (row, col) in enumerate(corners, start=1):
        batch[index, row : row + PATCH, col : col + PATCH] = 0.0
    return batch


def explain(image: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> Saliency:
    """Occlusion sensitivity of `image` ([28, 28] in [0, 1]); `run` maps images [N, 28, 28] to
    probabilities [N, 10] and is called once."""
    corners = inked(image)
    probs = run(occluded(image, corners))
    label = int(probs[0].argmax())
    drops = np.maximum(probs[0, label] - probs[1:, label], 0.0)
    total = np.zeros((28, 28), dtype=np.float64)
    for drop, (row, col) in zip(drops, corners, strict=True):
        total[row : row + PATCH, col : col + PATCH] += drop
    heat = total / COVERED  # a skipped patch counts, with no drop
    peak = heat.max()
    heatmap = (heat / peak if peak > 0 else heat).astype(np.float32)
    return Saliency(probs=probs[0], label=label, heatmap=heatmap)


def to_bytes(plane: np.ndarray) -> bytes:
    """A [28, 28] plane in [0, 1] as 784 bytes, row by row, 0–255 (the `explanation` reply)."""
    return np.round(np.clip(plane, 0.0, 1.0) * 255).astype(np.uint8).tobytes()
