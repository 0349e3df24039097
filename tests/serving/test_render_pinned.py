"""The images of many drawings, pinned bit for bit: the models were trained, and the stored
submissions judged, with exactly these images, so a faster renderer must give exactly them (the
digests below were taken from the renderer as it was before it was made faster). Whole drawings
(protocol v1) and the same drawings streamed to a held drawing (v2) must both match."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from server.realtime.protocol import AddPoints, StrokeStart, Undo
from server.serving import preprocess
from server.serving.held import HeldDrawing
from server.serving.preprocess import MAX_COORD, MAX_POINTS, MAX_STROKES, parse_strokes, render

Drawing = list[list[list[float]]]


def wobbly(rng: random.Random, strokes: int, points: int, step: float, at: float) -> Drawing:
    drawing = []
    for _ in range(strokes):
        x, y = rng.uniform(-at, at), rng.uniform(-at, at)
        stroke = []
        for _ in range(rng.randint(1, points)):
            x += rng.uniform(-step, step)
            y += rng.uniform(-step, step)
            stroke.append([round(x, 1), round(y, 1)])
        drawing.append(stroke)
    return drawing


def drawings(seed: int, count: int) -> list[Drawing]:
    """Digits as players draw them, and the odd shapes: dots, lines, slivers, the limits."""
    rng = random.Random(seed)
    out: list[Drawing] = []
    for _ in range(count):
        kind = rng.randrange(10)
        if kind < 5:
            out.append(wobbly(rng, rng.randint(1, 4), 60, 12, 300))
        elif kind == 5:  # long strokes, as a slow player draws them
            out.append(wobbly(rng, rng.randint(1, 3), 400, 4, 300))
        elif kind == 6:  # a dot, a tap, the same point again and again
            x, y = rng.uniform(-9, 9), rng.uniform(-9, 9)
            out.append([[[x, y]] * rng.randint(1, 3) for _ in range(rng.randint(1, 2))])
        elif kind == 7:  # straight lines: horizontal, vertical, diagonal, and a sliver
            a, b = rng.uniform(0, 100), rng.uniform(0, 100)
            out.append(
                rng.choice(
                    [
                        [[[a, b], [a + 80, b]]],
                        [[[a, b], [a, b - 80]]],
                        [[[a, b], [a + 50, b + 50]], [[a, b + 50], [a + 50, b]]],
                        [[[a, b], [a + 100, b + 1e-3]]],
                    ]
                )
            )
        elif kind == 8:  # tiny or huge coordinates
            scale = rng.choice([1e-5, 1e-3, 0.05, 50.0, MAX_COORD / 1000])
            digit = wobbly(rng, rng.randint(1, 3), 30, 12, 100)
            out.append([[[x * scale, y * scale] for x, y in stroke] for stroke in digit])
        else:  # many strokes, many points
            strokes = rng.randint(1, MAX_STROKES)
            out.append(wobbly(rng, strokes, max(1, MAX_POINTS // strokes // 2), 20, 400))
    return out


def digest(images: np.ndarray) -> str:
    assert images.dtype == np.float32 and images.shape[1:] == (28, 28)
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:32]


def streamed(drawing: Drawing, rng: random.Random) -> HeldDrawing:
    """The drawing sent as v2 increments of random sizes, drawn now and then on the way, with a
    stroke undone and drawn again once in a while."""
    held, seq = HeldDrawing(), 0

    def send(message_type: type[StrokeStart] | type[AddPoints], points: Drawing[0]) -> None:
        nonlocal seq
        seq += 1
        assert held.apply(message_type(seq=seq, points=points)) is None
        if rng.random() < 0.5:
            render_held([held])

    for stroke in drawing:
        cut = rng.randint(1, len(stroke))
        send(StrokeStart, stroke[:cut])
        if rng.random() < 0.1:
            seq += 1
            assert held.apply(Undo(seq=seq)) is None
            send(StrokeStart, stroke[:cut])
        while cut < len(stroke):
            step = rng.randint(1, 7)
            send(AddPoints, stroke[cut : cut + step])
            cut += step
    return held


def render_held(held: list[HeldDrawing]) -> np.ndarray:
    return render([h.strokes for h in held], [h.raster for h in held])


# Taken from the renderer before the batched numpy raster (Pillow's lines, `_stamp`).
PINNED = {
    0: "8870fa93d1fc43939e31dfec97c4a53d",
    1: "3d0e9c0c34f40bbc87e340f68e76ab90",
    2: "3d85bf443f27d65903dfb10796aac154",
}


@pytest.mark.parametrize("seed", sorted(PINNED))
def test_whole_drawings_render_as_pinned(seed):
    batch = drawings(seed, 300)
    assert digest(render([parse_strokes(d) for d in batch])) == PINNED[seed]
    # Alone, or in batches of any size, the same images.
    alone = [render([parse_strokes(d)])[0] for d in batch[:40]]
    assert digest(np.stack(alone)) == digest(render([parse_strokes(d) for d in batch[:40]]))


@pytest.mark.parametrize("seed", sorted(PINNED))
def test_streamed_drawings_render_as_pinned(seed):
    rng = random.Random(seed + 100)
    held = [streamed(d, rng) for d in drawings(seed, 300)]
    assert digest(render_held(held)) == PINNED[seed]


def test_lines_are_pillows_lines_for_every_segment_on_the_canvas():
    # Every step (dx, dy) a segment can take between two points that may be placed.
    frame, reach, left = preprocess._FRAME, preprocess._REACH, preprocess._LEFT
    longest = frame - 2 * reach - 1
    low, high = left + reach, left + frame - reach - 1
    segments = [
        (low if dx >= 0 else high, low if dy >= 0 else high, dx, dy)
        for dx in range(-longest, longest + 1)
        for dy in range(-longest, longest + 1)
    ]
    centres = np.zeros((len(segments), frame), dtype=np.uint64)
    pieces = [np.array([[x, y], [x + dx, y + dy]], dtype=float) for x, y, dx, dy in segments]
    identity = [(0.0, 0.0, 1.0, 0.0, 0.0)] * len(segments)  # a point lands where it is
    preprocess._draw_lines(centres, pieces, identity, list(range(len(segments))))
    pixels = np.unpackbits(centres.view(np.uint8), axis=-1, bitorder="little")
    for drawn, (x, y, dx, dy) in zip(pixels, segments, strict=True):
        sheet = Image.new("L", (left + frame, left + frame))
        ImageDraw.Draw(sheet).line([x, y, x + dx, y + dy], fill=1)
        pillows = np.asarray(sheet, dtype=bool)[left:, left:]
        assert np.array_equal(drawn.reshape(frame, frame), pillows), (x, y, dx, dy)
