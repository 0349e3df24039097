"""A connection's drawing held between increments (protocol v2, docs/protocol.md).

The client sends only what changed (`stroke_start`, `points`, `undo`, `clear`) and, to start
over or after `resync`, the whole drawing (`drawing`); each message carries `seq`, one more than
the one before. `HeldDrawing.apply` keeps the drawing and its `Raster` in step with the client's:

- the next `seq` (`seq == last + 1`) is applied;
- anything else — a gap (a message lost), a duplicate or an old `seq`, `points` with no stroke to
  add to, any increment after a refusal — is not applied: the held drawing is dropped and the
  answer is `RESYNC`. From then on only a `drawing` with a newer `seq` is accepted. So a guess is
  only ever made of exactly the drawing the client has, never of a wrong picture;
- `drawing` with any newer `seq` replaces everything (a gap before it is harmless);
- `undo` on an empty drawing changes nothing (as on the client's pad); the `seq` still counts;
- a message over the limits (`MAX_STROKES`, `MAX_POINTS`, coordinates) raises `DrawingError`
  and changes nothing, its `seq` not counted: the client's next increment is then a gap.

The state is the points (float64, grown by doubling), the points per stroke, their bounds (so
that a guess need not look at every point to place the drawing), and the raster (512 bytes of
bits): ~3.5 kB for a digit of 120 points, however long the connection lasts; freed with the
connection (`forget`).

This runs in the model worker, beside the batches that render and guess it.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from server.realtime.protocol import (
    AddPoints,
    Clear,
    Increment,
    Redraw,
    StrokeStart,
    Undo,
)
from server.serving.preprocess import (
    MAX_COORD,
    MAX_POINTS,
    MAX_STROKES,
    Box,
    DrawingError,
    Raster,
    Strokes,
    bounds,
    parse_strokes,
)

RESYNC: Final = "resync"


class HeldDrawing:
    __slots__ = ("_box", "_count", "_points", "lengths", "raster", "seq", "synced")

    def __init__(self) -> None:
        self.seq = 0  # the last `seq` applied
        self.synced = True  # False after a refusal, until a `drawing` arrives
        self.lengths: list[int] = []  # points per stroke
        self.raster = Raster()
        self._points = np.empty((16, 2))
        self._count = 0
        self._box = _NO_BOX  # the points' bounds, kept as they come (a guess needs them)

    @property
    def strokes(self) -> Strokes:
        """The drawing as `parse_strokes` would give it (for `render` and the raster)."""
        return Strokes(self._points[: self._count], list(self.lengths), self._box)

    @property
    def empty(self) -> bool:
        return self._count == 0

    def as_lists(self) -> list[list[list[float]]]:
        """The strokes as the client would send them whole (what a submission stores)."""
        flat = self._points[: self._count].tolist()
        out, start = [], 0
        for length in self.lengths:
            out.append(flat[start : start + length])
            start += length
        return out

    def apply(self, message: Increment) -> str | None:
        """Apply one message; None if applied, `RESYNC` if out of step (see the module doc)."""
        if isinstance(message, Redraw):
            if message.seq <= self.seq:
                return self._lose()
            if any(message.strokes):
                whole = parse_strokes(message.strokes)
                self._clear()
                self._append(whole.points, whole.box)
                self.lengths = whole.lengths
            else:
                self._clear()
            self.synced, self.seq = True, message.seq
            return None
        if not self.synced or message.seq != self.seq + 1:
            return self._lose()
        if isinstance(message, (StrokeStart, AddPoints)):
            new = message.points
            box = _checked_box(new)
            if isinstance(message, AddPoints) and not self.lengths:
                return self._lose()  # no stroke to add to: the client missed a stroke_start
            strokes = len(self.lengths) + isinstance(message, StrokeStart)
            if strokes > MAX_STROKES:
                raise DrawingError(
                    "drawing_too_large", f"A drawing has at most {MAX_STROKES} strokes."
                )
            if self._count + len(new) > MAX_POINTS:
                raise DrawingError(
                    "drawing_too_large", f"A drawing has at most {MAX_POINTS} points."
                )
            self._append(new, box)
            if isinstance(message, StrokeStart):
                self.lengths.append(len(new))
            else:
                self.lengths[-1] += len(new)
        elif isinstance(message, Undo):
            if self.lengths:
                self._count -= self.lengths.pop()
                self._box = bounds(self._points[: self._count]) if self._count else _NO_BOX
                self.raster.reset()
        elif isinstance(message, Clear):
            self._clear()
        self.seq = message.seq
        return None

    def _lose(self) -> str:
        self._clear()
        self.synced = False
        return RESYNC

    def _clear(self) -> None:
        self._count = 0
        self._box = _NO_BOX
        self.lengths = []
        self.raster.reset()
        if len(self._points) > 256:  # a long drawing's room is given back
            self._points = np.empty((16, 2))

    def _append(self, new: np.ndarray | list[list[float]], box: Box) -> None:
        end = self._count + len(new)
        if end > len(self._points):
            grown = np.empty((max(end, 2 * len(self._points)), 2))
            grown[: self._count] = self._points[: self._count]
            self._points = grown
        self._points[self._count : end] = new
        self._count = end
        old = self._box
        self._box = (
            min(old[0], box[0]),
            min(old[1], box[1]),
            max(old[2], box[2]),
            max(old[3], box[3]),
        )


def _checked_box(points: list[list[float]]) -> Box:
    """The bounds of an increment's points (msgspec has checked that they are pairs of
    numbers), or `DrawingError` if they are past MAX_COORD. An increment is a few points: plain
    Python does this several times faster than numpy's per-call cost."""
    xs, ys = zip(*points, strict=False)
    box = (min(xs), min(ys), max(xs), max(ys))
    if not (min(box[0], box[1]) >= -MAX_COORD and max(box[2], box[3]) <= MAX_COORD):
        raise DrawingError(
            "bad_drawing", f"Coordinates must be finite numbers within ±{MAX_COORD:g}."
        )
    return box


_NO_BOX = (math.inf, math.inf, -math.inf, -math.inf)
