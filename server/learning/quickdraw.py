"""Drawings in Google's Quick, Draw! dataset format, so tools written for it read ours too.

Quick, Draw!'s *simplified* drawings are made in three steps (its README): align the drawing to
the top-left corner (minimum x and y become 0), scale it uniformly so the longer side spans
0–255, then simplify every stroke with the Ramer–Douglas–Peucker algorithm at epsilon 2.0 and
round to integers. Each stroke is `[[x0, x1, …], [y0, y1, …]]`. Our raw strokes (canvas
coordinates, as the protocol sent them) are kept beside, in the same `[[xs], [ys]]` shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SIDE = 255  # simplified drawings are scaled into 0..255
EPSILON = 2.0  # the RDP tolerance Quick, Draw! uses, in the scaled coordinates
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

Strokes = Sequence[Sequence[Sequence[float]]]  # [[[x, y], ...], ...] as in the protocol


def rdp(points: np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    """Ramer–Douglas–Peucker: the fewest of `points` ([n, 2]) that keep the polyline within
    `epsilon` of the original. The first and last points always stay."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        start, end = points[first], points[last]
        inner = points[first + 1 : last]
        chord = end - start
        length = float(np.hypot(*chord))
        if length == 0.0:
            distances = np.hypot(*(inner - start).T)
        else:
            distances = np.abs(
                chord[0] * (inner[:, 1] - start[1]) - chord[1] * (inner[:, 0] - start[0])
            )
            distances = distances / length
        farthest = int(np.argmax(distances))
        if distances[farthest] > epsilon:
            middle = first + 1 + farthest
            keep[middle] = True
            stack.extend([(first, middle), (middle, last)])
    return points[keep]


def simplified(strokes: Strokes) -> list[list[list[int]]]:
    """Protocol strokes → Quick, Draw! simplified strokes: top-left aligned, the longer side
    scaled to 0..255 (aspect kept), RDP at epsilon 2, integers."""
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return []
    every = np.concatenate(arrays)
    low = every.min(axis=0)
    extent = float((every.max(axis=0) - low).max())
    scale = SIDE / extent if extent > 0 else 1.0
    drawing = []
    for stroke in arrays:
        xy = np.rint(rdp((stroke - low) * scale)).astype(int)
        drawing.append([xy[:, 0].tolist(), xy[:, 1].tolist()])
    return drawing


def raw(strokes: Strokes) -> list[list[list[float]]]:
    """Protocol strokes (`[[x, y], …]` per stroke) in Quick, Draw!'s `[[xs], [ys]]` shape,
    coordinates as drawn on the canvas."""
    drawing = []
    for stroke in strokes:
        xy = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        if len(xy):
            drawing.append([xy[:, 0].tolist(), xy[:, 1].tolist()])
    return drawing
