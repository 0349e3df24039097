"""A stored drawing as the PNG a validator or an admin is shown."""

from __future__ import annotations

import base64

import numpy as np

from server.serving.preprocess import image_to_png


def image_png(image: bytes) -> str:
    """A stored 28×28 float32 image as base64 PNG (white ink on black, as the model saw it)."""
    pixels = np.frombuffer(image, dtype="<f4").reshape(28, 28)
    return base64.b64encode(image_to_png(pixels)).decode()
