"""Building drawings and PNG bytes (valid and broken) for the serving tests."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

# A hand-drawn 7 (top bar, diagonal) and a crossbar, in canvas pixels.
SEVEN = [[[10.0, 10.0], [60.0, 12.0], [30.0, 80.0]], [[20.0, 45.0], [50.0, 44.0]]]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_with_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """A grayscale 8-bit PNG claiming `width`×`height`, with the given compressed pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def digit_on_canvas(side: int = 280) -> np.ndarray:
    """A white-on-black uint8 canvas with a thick 7 drawn on it, like a browser export."""
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    width = side // 14
    draw.line([(side * 0.25, side * 0.2), (side * 0.75, side * 0.2)], fill=255, width=width)
    draw.line([(side * 0.75, side * 0.2), (side * 0.4, side * 0.85)], fill=255, width=width)
    return np.asarray(canvas)
