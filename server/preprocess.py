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
from PIL import Image, ImageDraw

SIZE = 28  # the model's input side
BOX = 20  # MNIST fits each digit's ink into a 20×20 box inside the 28×28 frame

MAX_STROKES = 64
MAX_POINTS = 2000
MAX_COORD = 100_000.0  # canvas pixels; anything beyond is not a drawing

MAX_PNG_BYTES = 256 * 1024
MAX_PNG_SIDE = 1024

# Strokes are rendered so that the points' longer side spans RENDER_SPAN pixels (3× the 20-pixel
# box: the resize in `to_mnist` then anti-aliases), with a pen STROKE_WIDTH × that span wide.
# Because both are relative to the drawing's own size, the same digit drawn small or large on
# the canvas gives the same image. 0.16 puts strokes about 2.7 px wide in the 20×20 box, like
# MNIST's pen.
RENDER_SPAN = 64
STROKE_WIDTH = 0.16
# A polyline drawn without joints leaves notches at sharp corners; a round dab fills those.
SHARP_TURN_COS = math.cos(math.radians(30))

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

    total = float(fitted.sum())
    com_y = float((fitted.sum(axis=1) * np.arange(fit_h)).sum()) / total
    com_x = float((fitted.sum(axis=0) * np.arange(fit_w)).sum()) / total
    # Put the centre of mass at pixel (14, 14) as MNIST does, but never push ink off the frame.
    top = min(max(round(SIZE / 2 - com_y), 0), SIZE - fit_h)
    left = min(max(round(SIZE / 2 - com_x), 0), SIZE - fit_w)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + fit_h, left : left + fit_w] = fitted / fitted.max()
    return out


def strokes_to_image(strokes: object) -> np.ndarray:
    """Render canvas polylines `[[[x, y], ...], ...]` (any scale or offset) as a 28×28 image."""
    polylines = _parse_strokes(strokes)
    points = np.concatenate(polylines)
    low = points.min(axis=0)
    extent = float((points.max(axis=0) - low).max())
    # A single dot has no extent: any scale draws the same round dab.
    scale = RENDER_SPAN / extent if extent > 0 else 1.0
    pen = RENDER_SPAN * STROKE_WIDTH
    margin = pen / 2 + 1
    side = math.ceil(RENDER_SPAN + 2 * margin) + 1

    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    radius = pen / 2
    for line in polylines:
        # Rounding drops float noise (from the drawing's offset and scale) that would otherwise
        # flip pixels on the raster's edges; a thousandth of a pixel changes nothing visible.
        xy = np.round((line - low) * scale + margin, 3)
        if len(xy) > 1:
            draw.line(xy.ravel().tolist(), fill=255, width=round(pen))
        for x, y in _dab_points(xy):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return to_mnist(np.asarray(canvas))


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
        points = points.astype(np.float64)
        if not np.isfinite(points).all() or np.abs(points).max() > MAX_COORD:
            raise DrawingError(
                "bad_drawing", f"Coordinates must be finite numbers within ±{MAX_COORD:g}."
            )
        polylines.append(points)
    if not polylines:
        raise DrawingError("empty_drawing", "The drawing is empty: draw a digit first.")
    return polylines


def _dab_points(xy: np.ndarray) -> np.ndarray:
    """The points of a polyline that need a round dab: both ends and every sharp turn."""
    if len(xy) < 3:
        return xy
    segments = np.diff(xy, axis=0)
    lengths = np.hypot(segments[:, 0], segments[:, 1])
    dots = (segments[:-1] * segments[1:]).sum(axis=1)
    cosines = dots / np.maximum(lengths[:-1] * lengths[1:], 1e-12)
    sharp = xy[1:-1][cosines < SHARP_TURN_COS]
    return np.concatenate([xy[:1], sharp, xy[-1:]])


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
