"""Drawing → 28×28 MNIST-style image: one chain for serving, training and export.

A drawing arrives as strokes (canvas polylines) or as a PNG. Both become an ink-positive grayscale
array, then `to_mnist` does what MNIST's authors did: crop to the ink, fit into 20×20 keeping the
aspect ratio, and paste into 28×28 so that the centre of mass sits in the middle. The result is
float32 in [0, 1], white ink on black: exactly what the model's `image` input expects.

Everything here is pillow + numpy, so the serving process stays light. Every malformed input
raises `DrawingError` with a code from docs/protocol.md and a sentence a player can act on.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np
from PIL import Image

SIZE = 28  # the model's input side
BOX = 20  # MNIST fits each digit's ink into a 20×20 box inside the 28×28 frame

MAX_STROKES = 64
MAX_POINTS = 2000
MAX_COORD = 100_000.0  # canvas pixels; anything beyond is not a drawing

MAX_PNG_BYTES = 256 * 1024
MAX_PNG_SIDE = 1024

# Strokes are drawn with a round pen STROKE_WIDTH × the drawing's longer side wide, straight into
# the 20×20 box at SUPERSAMPLE× resolution; averaging each SUPERSAMPLE² block is the anti-aliased
# area downscale MNIST used. Because the pen and the box are relative to the drawing's own size,
# the same digit drawn small or large on the canvas gives the same image. 0.16 puts strokes about
# 2.7 px wide in the 20×20 box, like MNIST's pen.
STROKE_WIDTH = 0.16
SUPERSAMPLE = 3
# The pen's disc is stamped at points this many render pixels apart along each stroke: the edge
# between two stamps dips by under 0.1 px, far below what the block averaging can show.
TRACE_STEP = 2.0

# Ink fainter than this fraction of the darkest ink is background noise (PNG uploads, JPEG-like
# smudges); it neither counts as "ink present" nor widens the bounding box.
INK_THRESHOLD = 0.1

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DrawingError(ValueError):
    """A drawing that cannot become a model input; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
    fitted = np.maximum(np.asarray(resized), 0.0)  # negative "ink" means none

    return _centre(fitted)


_RAMP = np.arange(BOX, dtype=np.float32)


def _centre(fitted: np.ndarray) -> np.ndarray:
    """Paste a fitted image (at most 20×20) into 28×28, its centre of mass in the middle."""
    fit_h, fit_w = fitted.shape
    rows, cols = np.add.reduce(fitted, axis=1), np.add.reduce(fitted, axis=0)
    total = float(np.add.reduce(rows))
    com_y = float(rows @ _RAMP[:fit_h]) / total
    com_x = float(cols @ _RAMP[:fit_w]) / total
    # Put the centre of mass at pixel (14, 14) as MNIST does, but never push ink off the frame.
    top = min(max(round(SIZE / 2 - com_y), 0), SIZE - fit_h)
    left = min(max(round(SIZE / 2 - com_x), 0), SIZE - fit_w)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + fit_h, left : left + fit_w] = fitted / np.maximum.reduce(fitted, axis=None)
    return out


def strokes_to_image(strokes: object) -> np.ndarray:
    """Render canvas polylines `[[[x, y], ...], ...]` (any scale or offset) as a 28×28 image."""
    polylines = _parse_strokes(strokes)
    points = polylines[0] if len(polylines) == 1 else np.concatenate(polylines)
    # (This function runs for every live guess, on arrays of a few hundred numbers: it calls the
    # ufunc reductions directly, since `.min()`, `.sum()` and `np.round` add a Python layer that
    # costs more than the arithmetic.)
    low = np.minimum.reduce(points)
    width, height = (np.maximum.reduce(points) - low).tolist()
    extent = max(width, height)
    if extent == 0:  # a single dot: only the pen's disc, which then fills the box
        return _DOT.copy()
    # In render pixels, between pixel centres, the points' longer side spans the box less the
    # pen's disc at either end; the shorter side is centred in as many whole blocks as it needs.
    scale = (_SIDE - 1 - 2 * _PEN_RADIUS) / extent
    ink_w = width * scale + 2 * _PEN_RADIUS + 1
    ink_h = height * scale + 2 * _PEN_RADIUS + 1
    fit_h = max(1, round(ink_h / SUPERSAMPLE))
    fit_w = max(1, round(ink_w / SUPERSAMPLE))
    origin = (
        np.array([SUPERSAMPLE * fit_w - ink_w, SUPERSAMPLE * fit_h - ink_h]) / 2
        + _PEN_RADIUS
        + _PAD
    )
    # Rounding drops float noise (from the drawing's offset and scale) that would otherwise flip
    # pixels on the raster's edges; a thousandth of a pixel changes nothing visible.
    lines = [((line - low) * scale + origin).round(3) for line in polylines]
    # Mark the pixels the pen's centre passes (each once, however often it passes), then stamp
    # the pen's disc on each of them.
    centres = np.zeros(_CANVAS * _CANVAS, dtype=bool)
    centres[_trace(lines) @ _FLAT] = True
    canvas = np.zeros(_CANVAS * _CANVAS, dtype=np.float32)
    canvas[(np.flatnonzero(centres)[:, None] + _PEN).ravel()] = 1.0
    # Sum each SUPERSAMPLE × SUPERSAMPLE block of the box (rows, then columns).
    box = canvas.reshape(_CANVAS, _CANVAS)[_PAD : _PAD + _SIDE, _PAD : _PAD + _SIDE]
    rows = np.add.reduce(box.reshape(BOX, SUPERSAMPLE, _SIDE), axis=1)
    blocks = np.add.reduce(rows.reshape(BOX, BOX, SUPERSAMPLE), axis=2)
    return _centre(blocks[:fit_h, :fit_w])


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


def _parse_strokes(strokes: object) -> list[np.ndarray]:
    """Check the shape and limits of a strokes list; return one float64 [n, 2] array per stroke."""
    if not isinstance(strokes, list | tuple):
        raise DrawingError("bad_drawing", "Strokes must be a list of polylines.")
    if len(strokes) > MAX_STROKES:
        raise DrawingError(
            "drawing_too_large",
            f"The drawing has {len(strokes)} strokes; the limit is {MAX_STROKES}.",
        )
    if not all(isinstance(stroke, list | tuple) for stroke in strokes):
        raise DrawingError("bad_drawing", "Each stroke must be a list of [x, y] points.")
    total = sum(len(stroke) for stroke in strokes)
    if total > MAX_POINTS:
        raise DrawingError(
            "drawing_too_large", f"The drawing has {total} points; the limit is {MAX_POINTS}."
        )
    polylines = []
    for stroke in strokes:
        if not stroke:
            continue
        try:
            points = np.asarray(stroke)
        except ValueError:  # ragged nesting
            points = np.empty(0, dtype=object)
        if points.ndim != 2 or points.shape[1] != 2 or points.dtype.kind not in "iuf":
            raise DrawingError("bad_drawing", "Each point must be a pair of numbers [x, y].")
        points = points.astype(np.float64, copy=False)
        if not np.maximum.reduce(np.abs(points), axis=None) <= MAX_COORD:  # (NaN: false)
            raise DrawingError(
                "bad_drawing", f"Coordinates must be finite numbers within ±{MAX_COORD:g}."
            )
        polylines.append(points)
    if not polylines:
        raise DrawingError("empty_drawing", "The drawing is empty: draw a digit first.")
    return polylines


def _trace(lines: list[np.ndarray]) -> np.ndarray:
    """Pixels [x, y] along the polylines, at most TRACE_STEP apart: where the pen is stamped."""
    starts = np.concatenate([line[:-1] for line in lines])
    deltas = np.concatenate([line[1:] for line in lines]) - starts
    # Every segment is cut into as many pieces as the longest needs: fewer numpy calls than
    # cutting each to its own length, and a long segment among short ones costs little.
    longest = float(np.maximum.reduce(np.hypot(deltas[:, 0], deltas[:, 1]), initial=0.0))
    pieces = max(1, math.ceil(longest / TRACE_STEP))
    along = starts[:, None, :] + deltas[:, None, :] * (np.arange(pieces) / pieces)[:, None]
    # Each stroke's last point too (which for a one-point stroke is all of it).
    ends = [line[-1:] for line in lines]
    return np.rint(np.concatenate([along.reshape(-1, 2), *ends])).astype(np.intp)


def _disc(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the pixels whose centres lie within `radius` of a pixel's."""
    reach = math.ceil(radius)
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = dy**2 + dx**2 <= radius**2
    return dy[inside], dx[inside]


# The render canvas: the SUPERSAMPLE× box with room around it for the pen's overhang (a side
# rounded down to whole blocks loses that overhang, as a crop would). Indices into it are flat.
_SIDE = SUPERSAMPLE * BOX
_PEN_RADIUS = (_SIDE - 1) * STROKE_WIDTH / 2 / (1 + STROKE_WIDTH)
_PAD = math.ceil(_PEN_RADIUS) + SUPERSAMPLE
_CANVAS = _SIDE + 2 * _PAD
_FLAT = np.array([1, _CANVAS])  # [x, y] @ _FLAT is the flat index of pixel (x, y)
_PEN = np.array(_disc(_PEN_RADIUS)).T @ _FLAT[::-1]
# A dot is the pen's disc alone, scaled up to fill the box.
_DOT = _centre(
    np.add.reduceat(
        np.add.reduceat(
            np.hypot(*np.mgrid[:_SIDE, :_SIDE] - (_SIDE - 1) / 2) <= (_SIDE - 1) / 2,
            np.arange(0, _SIDE, SUPERSAMPLE),
            axis=0,
            dtype=np.float32,
        ),
        np.arange(0, _SIDE, SUPERSAMPLE),
        axis=1,
    )
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
