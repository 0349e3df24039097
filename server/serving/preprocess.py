"""Drawing → 28×28 MNIST-style image: one chain for serving, training and export.

A drawing arrives as strokes (canvas polylines) or as a PNG. Both end as MNIST's authors made their
digits: the ink cropped, fitted into 20×20 keeping the aspect ratio, and pasted into 28×28 so that
the centre of mass sits in the middle. The result is float32 in [0, 1], white ink on black: exactly
what the model's `image` input expects.

Strokes are checked (`parse_strokes`) and then drawn (`render`) straight into the 20×20 box, on a
canvas SUPERSAMPLE× finer whose blocks are then summed (the anti-aliased area downscale MNIST
used): Pillow marks the pixels each polyline passes (its 1-pixel lines, C), and the round pen's
disc is stamped on all of them with a few whole-array shifts and ORs (`_stamp`).

`render` draws a whole batch at once: numpy's per-call overhead (a few µs a call on this
machine) is paid once per batch, not per drawing. The pixels the pen's centre passed are kept as
bits, a row of the canvas per uint64 (512 bytes a drawing): Pillow draws the batch's lines on one
sheet, which is packed to bits in one call; stamping the disc is then shifts and ORs on 64
uint64s a drawing, and the blocks are counted from the unpacked bits. A drawing is drawn on its
`Raster`; protocol v2 keeps one per connection (server/serving/held.py) with the bounds of its
points, and `render` draws only the segments added since the last guess, unless the drawing
outgrew its box. Either way the image is the same bit for bit (tests/serving/
test_render_pinned.py pins them; they are what the renderer gave before it was made faster).
Serving draws the live guesses in the model worker's batches (server/serving/model_worker.py).
A PNG is decoded and fitted by `to_mnist`; both paths share the centring (`_centre`).

Everything here is pillow + numpy, so the serving process stays light. Every malformed input
raises `DrawingError` with a code from docs/protocol.md and a sentence a player can act on.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import math
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

SIZE = 28  # the model's input side
BOX = 20  # MNIST fits each digit's ink into a 20×20 box inside the 28×28 frame

MAX_STROKES = 64
MAX_POINTS = 2000
MAX_COORD = 100_000.0  # canvas pixels; anything beyond is not a drawing
# A drawing that spans less than this (canvas pixels) is a dot. Without a floor, a drawing as
# wide as a denormal (`[[0, 0], [5e-324, 0]]`) scales by ~1e325 = inf, and inf × 0 is NaN.
MIN_EXTENT = 1e-6

MAX_PNG_BYTES = 256 * 1024
MAX_PNG_SIDE = 1024

# Strokes are drawn with a round pen STROKE_WIDTH × the drawing's longer side wide, straight into
# the 20×20 box at SUPERSAMPLE× resolution; averaging each SUPERSAMPLE² block is the anti-aliased
# area downscale MNIST used. Because the pen and the box are relative to the drawing's own size,
# the same digit drawn small or large on the canvas gives the same image. 0.16 puts strokes about
# 2.7 px wide in the 20×20 box, like MNIST's pen.
STROKE_WIDTH = 0.16
SUPERSAMPLE = 3
# Ink fainter than this fraction of the darkest ink is background noise (PNG uploads, JPEG-like
# smudges); it neither counts as "ink present" nor widens the bounding box.
INK_THRESHOLD = 0.1

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


Box = tuple[float, float, float, float]  # the least x and y of some points, and the greatest


class Strokes(NamedTuple):
    """A checked drawing: all its points, stroke after stroke, and how many each stroke has."""

    points: np.ndarray  # float64 [n, 2]
    lengths: list[int]  # points per stroke (empty strokes left out)
    box: Box  # the points' bounds


class DrawingError(ValueError):
    """A drawing that cannot become a model input; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def strokes_to_image(strokes: object) -> np.ndarray:
    """Render canvas polylines `[[[x, y], ...], ...]` (any scale or offset) as a 28×28 image."""
    return render([parse_strokes(strokes)])[0]


def to_mnist(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit into 20×20 keeping aspect, centre the mass in 28×28.

    `ink` is any 2-D array where larger means more ink (uint8 or float, any scale). Returns float32
    [28, 28] in [0, 1] whose brightest pixel is 1.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise DrawingError("bad_drawing", f"Expected a 2-D grayscale image, got shape {ink.shape}.")
    peak = float(ink.max()) if ink.size else 0.0
    if not math.isfinite(peak):  # NaN anywhere makes the max NaN
        raise DrawingError("bad_drawing", "The image has pixels that are not finite numbers.")
    if peak <= 0:
        raise DrawingError("empty_drawing", "The drawing is empty: draw a digit first.")
    mask = ink > INK_THRESHOLD * peak
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    height, width = crop.shape
    scale = BOX / max(height, width)
    fit_h = max(1, round(height * scale))
    fit_w = max(1, round(width * scale))
    # Area averaging (BOX) is the anti-aliased downscale MNIST used. Pillow rather than a matrix
    # product: numpy's BLAS threads stall badly on a busy machine.
    resized = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (fit_w, fit_h), Image.Resampling.BOX
    )
    fitted = np.zeros((1, BOX, BOX), dtype=np.float32)
    fitted[0, :fit_h, :fit_w] = np.maximum(np.asarray(resized), 0.0)  # negative "ink" is none
    return _centre(fitted, np.array([[fit_w, fit_h]]))[0]


def parse_strokes(strokes: object) -> Strokes:
    """Check the shape and limits of a strokes list `[[[x, y], ...], ...]`."""
    if not isinstance(strokes, list | tuple):
        raise DrawingError("bad_drawing", "Strokes must be a list of polylines.")
    if len(strokes) > MAX_STROKES:
        raise DrawingError(
            "drawing_too_large",
            f"The drawing has {len(strokes)} strokes; the limit is {MAX_STROKES}.",
        )
    if not all(isinstance(stroke, list | tuple) for stroke in strokes):
        raise DrawingError("bad_drawing", "Each stroke must be a list of [x, y] points.")
    lengths = [len(stroke) for stroke in strokes if stroke]
    if sum(lengths) > MAX_POINTS:
        raise DrawingError(
            "drawing_too_large",
            f"The drawing has {sum(lengths)} points; the limit is {MAX_POINTS}.",
        )
    if not lengths:
        raise DrawingError("empty_drawing", "The drawing is empty: draw a digit first.")
    points = check_points(list(itertools.chain.from_iterable(strokes)))
    return Strokes(points, lengths, bounds(points))


def bounds(points: np.ndarray) -> Box:
    """The bounds of points [n, 2] (at least one)."""
    low_x, low_y = np.minimum.reduce(points).tolist()
    high_x, high_y = np.maximum.reduce(points).tolist()
    return low_x, low_y, high_x, high_y


def check_points(points: Sequence[object]) -> np.ndarray:
    """Points `[[x, y], ...]` (at least one) as float64 [n, 2], or `DrawingError`."""
    # Each point a list of two numbers. Checked this way, with numpy converting the flattened
    # numbers, it costs a few times less than converting the nested lists (this runs for every
    # live guess).
    numbers = None
    if set(map(type, points)) <= _PAIR_TYPES and set(map(len, points)) == {2}:  # type: ignore[arg-type]
        numbers = np.array(list(itertools.chain.from_iterable(points)))  # type: ignore[arg-type]
    if numbers is None or numbers.ndim != 1 or numbers.dtype.kind not in "iuf":
        raise DrawingError("bad_drawing", "Each point must be a pair of numbers [x, y].")
    if not np.maximum.reduce(np.abs(numbers)) <= MAX_COORD:  # (NaN: false)
        raise DrawingError(
            "bad_drawing", f"Coordinates must be finite numbers within ±{MAX_COORD:g}."
        )
    return numbers.astype(np.float64, copy=False).reshape(-1, 2)


def render(drawings: Sequence[Strokes], rasters: Sequence[Raster] | None = None) -> np.ndarray:
    """Draw checked drawings (from `parse_strokes`) as float32 [N, 28, 28] images, all at once.

    Each drawing's longer side spans the 20×20 box, between pixel centres, less the pen's disc at
    either end; its shorter side is centred in as many whole blocks as it needs. So the drawing's
    own offset and scale on the canvas never matter. Total over everything `parse_strokes`
    accepts (tests/serving/test_preprocess_total.py searches for counterexamples).

    Given `rasters` (one per drawing, kept by the caller), each drawing is drawn on its raster,
    which must hold an earlier state of the same drawing or have been `reset`: only the points
    added since are drawn (protocol v2, server/serving/held.py). Either way the images are the
    same bit for bit (tests/serving/test_render_pinned.py). Should this raise, no raster has
    changed.
    """
    keep = rasters is not None
    if rasters is None:
        rasters = [Raster() for _ in drawings]
    redrawn: list[int] = []  # rows whose layout moved: drawn again from scratch
    layouts: list[_Layout] = []
    pieces: list[np.ndarray] = []  # the points to draw, polyline by polyline
    placing: list[tuple[float, ...]] = []  # each piece's layout (`_Layout.placing`)
    owners: list[int] = []  # each piece's row
    for row, (raster, drawing) in enumerate(zip(rasters, drawings, strict=True)):
        layout = raster.layout
        if layout is None or drawing.box != raster.box:
            layout = _layout(drawing.box)
        layouts.append(layout)
        drawn = raster.drawn
        if layout != raster.layout:
            redrawn.append(row)
            drawn = []
        start = 0
        for index, length in enumerate(drawing.lengths):
            done = drawn[index] if index < len(drawn) else 0
            if length > done:
                # From the last point drawn (the joint), so the new segment meets the old ones.
                pieces.append(drawing.points[start + max(0, done - 1) : start + length])
                placing.append(layout.placing)
                owners.append(row)
            start += length
    joined = bytearray().join([raster.centres for raster in rasters])
    centres = np.frombuffer(joined, dtype=np.uint64).reshape(len(rasters), _FRAME)
    centres[redrawn] = 0
    if pieces:
        _draw_lines(centres, pieces, placing, owners)
    if keep:
        kept = centres.tobytes()
        for row, (raster, drawing) in enumerate(zip(rasters, drawings, strict=True)):
            raster.centres = kept[row * _ROW_BYTES : (row + 1) * _ROW_BYTES]
            raster.box, raster.layout = drawing.box, layouts[row]
            raster.drawn = list(drawing.lengths)
    return _finish(_stamp(centres), layouts)


class Raster:
    """The pixels a drawing's pen centre passed so far (on a canvas SUPERSAMPLE× the 20×20 box),
    kept between guesses by protocol v2 (`render`).

    The canvas depends on where the drawing's points land in the box, which depends on the whole
    drawing's bounding box (`_Layout`): while that stays the same only the new segments are
    drawn; when it moves (the drawing grew past its box) or after `reset` (an undo, a clear),
    everything is drawn again. 512 bytes of pixels (a bit each): a connection's raster state.
    """

    __slots__ = ("box", "centres", "drawn", "layout")

    def __init__(self) -> None:
        self.centres = _BLANK  # _FRAME rows of _FRAME bits (uint64), bit k: the row's column k
        self.box: Box | None = None  # the drawing's bounds when last drawn
        self.layout: _Layout | None = None  # and its layout, None: draw everything next time
        self.drawn: list[int] = []  # points drawn per stroke so far

    def reset(self) -> None:
        """Forget what was drawn (the next `render` starts over)."""
        self.layout = None


class _Layout(NamedTuple):
    """Where a drawing lands in the box: points → canvas pixels, and the whole blocks it uses."""

    # The drawing's least x and y, its scale, and where that corner lands on the canvas.
    placing: tuple[float, float, float, float, float]
    fit: tuple[int, int]  # whole blocks wide and high
    dot: bool  # a single dot: only the pen's disc, which then fills the box


def _layout(box: Box) -> _Layout:
    # The same float operations, in the same order, as the numpy code this replaced: the same
    # pixels, bit for bit. Every point lands on the canvas ≥ 11 pixels from its top and left and
    # within 64.2: 0.75 past the pen's radius and the pad at most, as a side's whole blocks
    # (`fit`, ≥ 3 for the pen alone) are within 1.5 pixels of its ink, and the longer side spans
    # _SIDE - 1 - 2 × _PEN_RADIUS.
    low_x, low_y, high_x, high_y = box
    width, height = high_x - low_x, high_y - low_y
    extent = max(width, height)
    dot = extent < MIN_EXTENT
    scale = (_SIDE - 1 - 2 * _PEN_RADIUS) / (1.0 if dot else extent)
    ink_w = width * scale + 2 * _PEN_RADIUS + 1
    ink_h = height * scale + 2 * _PEN_RADIUS + 1
    fit_w = max(1, round(ink_w / SUPERSAMPLE))
    fit_h = max(1, round(ink_h / SUPERSAMPLE))
    origin_x = (SUPERSAMPLE * fit_w - ink_w) / 2 + _PEN_RADIUS + _PAD
    origin_y = (SUPERSAMPLE * fit_h - ink_h) / 2 + _PEN_RADIUS + _PAD
    return _Layout(
        (low_x, low_y, scale, origin_x, origin_y),
        (BOX, BOX) if dot else (fit_w, fit_h),
        dot,
    )


def _draw_lines(
    centres: np.ndarray,
    pieces: list[np.ndarray],
    placing: list[tuple[float, ...]],
    owners: list[int],
) -> None:
    """Set the pixels of the pieces' lines in `centres` [N, _FRAME] (bit rows): each piece a
    polyline of points for its owner's row, placed by its layout.

    Pillow draws the 1-pixel lines, on one sheet for the whole batch: each row's square under
    the one before. Setting a pixel twice changes nothing, so a drawing drawn in pieces sets
    exactly the pixels of it drawn whole.
    """
    counts = [len(piece) for piece in pieces]
    at = np.repeat(np.array(placing), counts, axis=0)
    # Pillow cuts coordinates down to whole pixels: +0.5 makes that a rounding. Rounding to a
    # thousandth first drops float noise (from the drawing's offset and scale) that would
    # otherwise flip pixels on the raster's edges. Cut here, the coordinates move to their row's
    # square as whole numbers: the same pixels, moved.
    placed = (np.concatenate(pieces) - at[:, :2]) * at[:, 2:3] + at[:, 3:]
    pixels = (placed.round(3) + 0.5).astype(np.intp) - _LEFT
    if pixels.min() < _REACH or pixels.max() >= _FRAME - _REACH:
        raise RuntimeError("a point placed off its canvas")  # never: see `_layout`
    pixels[:, 1] += np.repeat(np.array(owners) * _FRAME, counts)
    xy = pixels.ravel().tolist()
    sheet = Image.new("L", (_FRAME, _FRAME * len(centres)))
    pen = ImageDraw.Draw(sheet)
    start = 0
    for count in counts:
        # (Pillow draws a polyline of one point as nothing.)
        (pen.line if count > 1 else pen.point)(xy[start : start + 2 * count], fill=1)
        start += 2 * count
    marked = np.frombuffer(sheet.tobytes(), dtype=bool)
    centres |= np.packbits(marked, bitorder="little").view(np.uint64).reshape(centres.shape)


def _stamp(centres: np.ndarray) -> np.ndarray:
    """The pen's disc stamped on every pixel set in `centres` [N, _FRAME] (bit rows): each row
    of the disc is the row's bits shifted left and right up to its half-width, OR-ed."""
    widened = [centres]  # widened[w]: a centre in the same row within w pixels
    for w in range(1, _REACH + 1):
        widened.append(widened[-1] | (centres << w) | (centres >> w))
    ink = widened[_PEN_HALF_WIDTHS[0]].copy()
    for dy, w in enumerate(_PEN_HALF_WIDTHS[1:], start=1):
        ink[:, dy:] |= widened[w][:, :-dy]
        ink[:, :-dy] |= widened[w][:, dy:]
    return ink


def _finish(ink: np.ndarray, layouts: Sequence[_Layout]) -> np.ndarray:
    """The 28×28 images of inked frames [N, _FRAME] (bit rows): the blocks of the box summed,
    the mass centred."""
    fit = np.array([layout.fit for layout in layouts], dtype=np.intp).reshape(-1, 2)
    dot = np.array([layout.dot for layout in layouts], dtype=bool)
    # Sum each SUPERSAMPLE × SUPERSAMPLE block of the box; ink past a drawing's whole blocks (the
    # pen's overhang on a side rounded down) is cropped.
    box = np.ascontiguousarray(ink[:, _BOX_AT : _BOX_AT + _SIDE])
    pixels = np.unpackbits(box.view(np.uint8), axis=-1, bitorder="little")  # [N, _SIDE * 8]
    pixels = pixels.reshape(len(ink), _SIDE, _FRAME)[:, :, _BOX_AT : _BOX_AT + _SIDE]
    rows = pixels[:, 0::SUPERSAMPLE] + pixels[:, 1::SUPERSAMPLE] + pixels[:, 2::SUPERSAMPLE]
    blocks = rows[..., 0::SUPERSAMPLE] + rows[..., 1::SUPERSAMPLE] + rows[..., 2::SUPERSAMPLE]
    blocks = blocks.astype(np.float32)
    used = fit[:, :, None] > _RAMP  # [N, 2, 20]: the columns and the rows of whole blocks
    blocks *= used[:, 1, :, None] & used[:, 0, None, :]
    blocks[dot] = _DOT_BLOCKS
    return _centre(blocks, fit)


def png_from_base64(text: str) -> bytes:
    """The PNG bytes of a drawing's `png` field (base64), checked for size first."""
    if len(text) > (MAX_PNG_BYTES * 4) // 3 + 4:
        raise DrawingError("drawing_too_large", "The PNG is over 256 KiB.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DrawingError("bad_drawing", "`png` is not valid base64.") from None


def png_to_image(data: bytes) -> np.ndarray:
    """Decode a PNG (black-on-white or white-on-black, any colour mode) into a 28×28 image."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DrawingError("bad_drawing", "The image must be PNG bytes.")
    if len(data) > MAX_PNG_BYTES:
        raise DrawingError(
            "drawing_too_large",
            f"The PNG is {len(data) // 1024} KiB; the limit is {MAX_PNG_BYTES // 1024} KiB.",
        )
    width, height = _png_dimensions(bytes(data[:24]))
    if width == 0 or height == 0:
        raise DrawingError("bad_drawing", "The PNG has no pixels.")
    if width > MAX_PNG_SIDE or height > MAX_PNG_SIDE:
        raise DrawingError(
            "drawing_too_large",
            f"The PNG is {width}×{height} pixels; the limit is {MAX_PNG_SIDE}×{MAX_PNG_SIDE}.",
        )
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        image.load()
    except Image.DecompressionBombError as exc:  # a backstop: the header check comes first
        raise DrawingError("drawing_too_large", "The PNG is too large to decode.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as any of these.
        raise DrawingError(
            "bad_drawing", "The PNG is truncated or corrupt; export the drawing again."
        ) from exc
    return to_mnist(_ink_of(image))


def image_to_png(image28: np.ndarray) -> bytes:
    """Encode a [28, 28] float image in [0, 1] as an 8-bit grayscale PNG (white ink on black)."""
    pixels = np.clip(np.asarray(image28, dtype=np.float32), 0.0, 1.0)
    buffer = io.BytesIO()
    Image.fromarray(np.rint(pixels * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _centre(fitted: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Paste fitted images into 28×28 frames, each centre of mass in the middle, brightest = 1.

    `fitted` is [N, 20, 20], each image's ink within its top-left `fit` [N, 2] (width, height).
    """
    rows, cols = np.add.reduce(fitted, axis=2), np.add.reduce(fitted, axis=1)
    total = np.add.reduce(rows, axis=1)
    centre = np.stack([cols @ _RAMP, rows @ _RAMP], axis=1) / total[:, None]  # x, y
    # Put the centre of mass at pixel (14, 14) as MNIST does, but never push ink off the frame.
    corner = np.clip(np.rint(SIZE / 2 - centre), 0, SIZE - fit).astype(np.intp)
    frames = np.zeros((len(fitted), SIZE + BOX, SIZE + BOX), dtype=np.float32)
    # Each image pasted at its corner, all in one assignment: frame n, rows top + 0..BOX-1,
    # columns left + 0..BOX-1.
    frames[
        np.arange(len(fitted))[:, None, None],
        corner[:, 1, None, None] + _RAMP_INDEX[:, None],
        corner[:, 0, None, None] + _RAMP_INDEX,
    ] = fitted
    # The brightest pixel, found in `fitted` (smaller, and in one piece): the frame holds all of
    # its ink (inside `fit`) and zeros.
    peak = np.maximum.reduce(fitted.reshape(len(fitted), -1), axis=1)
    return frames[:, :SIZE, :SIZE] / peak[:, None, None]


_PAIR_TYPES = {list, tuple}
_RAMP = np.arange(BOX, dtype=np.float32)
_RAMP_INDEX = np.arange(BOX)
# The render canvas: the SUPERSAMPLE× box with room around it for the pen's overhang (a side
# rounded down to whole blocks loses that overhang, as a crop would).
_SIDE = SUPERSAMPLE * BOX
_PEN_RADIUS = (_SIDE - 1) * STROKE_WIDTH / 2 / (1 + STROKE_WIDTH)
_PAD = math.ceil(_PEN_RADIUS) + SUPERSAMPLE
# The pen's disc, row by row: the pixels whose centres lie within its radius of the middle one
# reach this far left and right in each row 0, 1, 2, ... above (and below) the middle.
_PEN_HALF_WIDTHS = [
    math.floor(math.sqrt(_PEN_RADIUS**2 - dy**2)) for dy in range(math.floor(_PEN_RADIUS) + 1)
]
_REACH = len(_PEN_HALF_WIDTHS) - 1  # how far the disc reaches from its middle
# The pen's centres are kept on the 64 × 64 square of the canvas around the box, a row of pixels
# per uint64 (bit k: the square's column k); every centre lands at least _REACH inside it (see
# `_layout`), so its disc does too. A raster with nothing drawn shares _BLANK.
_FRAME = 64
_LEFT = _PAD + (_SIDE - _FRAME) // 2  # the square's first row and column on the canvas
_BOX_AT = _PAD - _LEFT  # the box's first row and column in the square
_ROW_BYTES = _FRAME * 8
_BLANK = bytes(_ROW_BYTES)
# A dot is the pen's disc alone, scaled up to fill the box.
_DOT_BLOCKS = (
    (np.hypot(*np.mgrid[:_SIDE, :_SIDE] - (_SIDE - 1) / 2) <= (_SIDE - 1) / 2)
    .reshape(BOX, SUPERSAMPLE, BOX, SUPERSAMPLE)
    .sum(axis=(1, 3), dtype=np.float32)
)


def _png_dimensions(head: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, read before anything is decompressed."""
    if not head.startswith(_PNG_SIGNATURE):
        raise DrawingError("bad_drawing", "This is not a PNG image.")
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise DrawingError("bad_drawing", "The PNG is truncated or corrupt; export it again.")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _ink_of(image: Image.Image) -> np.ndarray:
    """Grayscale ink (larger = more ink) of a decoded image, whatever its mode and polarity."""
    if image.mode.startswith("I"):  # 16-bit grayscale PNG
        return _ink_from_gray(np.asarray(image, dtype=np.float32) / 65535.0)
    if not image.has_transparency_data:
        return _ink_from_gray(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
    rgba = image.convert("RGBA")
    gray = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    # Canvas exports often draw ink on a transparent background: composite the ink onto the
    # opposite of its own colour so that it stays visible either way.
    ink_colour = float((gray * alpha).sum()) / max(float(alpha.sum()), 1e-6)
    backdrop = 1.0 if ink_colour < 0.5 else 0.0
    return _ink_from_gray(gray * alpha + backdrop * (1.0 - alpha))


def _ink_from_gray(gray: np.ndarray) -> np.ndarray:
    """Decide the polarity from the border (the background) and subtract the background level."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on a light background
        gray = 1.0 - gray
        background = 1.0 - background
    return np.clip(gray - background, 0.0, None)
