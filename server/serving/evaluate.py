"""`fool-the-model eval` and `fool-the-model predict`: ONNX Runtime only, no torch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnxruntime import InferenceSession

from server.config import DataLayout
from server.mnist import MnistUnavailable, load_mnist
from server.serving.inference import ModelError, load_session, run_batch
from server.serving.model_files import latest_model
from server.serving.preprocess import MAX_PNG_BYTES, DrawingError, png_to_image

EVAL_BATCH = 1000


def eval_command(model_path: str | Path, data_dir: Path) -> int:
    """Print the model's MNIST test accuracy, overall and per class."""
    try:
        session = load_session(model_path)
        mnist = load_mnist(data_dir, show_progress=True)
    except (ModelError, MnistUnavailable) as exc:
        return _fail(str(exc))
    overall, per_class = accuracy(session, mnist.test_images, mnist.test_labels)
    print(f"model: {model_path}")
    print(f"MNIST test accuracy: {overall:.4f} ({len(mnist.test_labels)} images)")
    print("digit  accuracy  count")
    for digit, (digit_accuracy, count) in enumerate(per_class):
        print(f"{digit:>5}  {digit_accuracy:>8.4f}  {count:>5}")
    return 0


def accuracy(
    session: InferenceSession, images: np.ndarray, labels: np.ndarray
) -> tuple[float, list[tuple[float, int]]]:
    """Overall accuracy and (accuracy, count) per digit.

    `images` are [N, 28, 28], uint8 0..255 (MNIST) or float in [0, 1] (preprocessed drawings).
    """
    pixels = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    guesses = np.concatenate(
        [
            run_batch(session, pixels[start : start + EVAL_BATCH]).argmax(axis=1)
            for start in range(0, len(pixels), EVAL_BATCH)
        ]
    )
    correct = guesses == labels
    per_class = []
    for digit in range(10):
        mine = labels == digit
        per_class.append((float(correct[mine].mean()) if mine.any() else 0.0, int(mine.sum())))
    return float(correct.mean()), per_class


def predict_command(image_path: str | Path, model_path: str | Path | None, data_dir: Path) -> int:
    """Print the model's guess for a PNG file (default model: the newest in the data directory)."""
    image_path = Path(image_path)
    if not image_path.is_file():
        return _fail(f"No image file at {image_path}.")
    if image_path.stat().st_size > MAX_PNG_BYTES:
        return _fail(f"{image_path} is larger than the {MAX_PNG_BYTES // 1024} KiB limit.")
    try:
        image = png_to_image(image_path.read_bytes())
    except DrawingError as exc:
        return _fail(f"{image_path}: {exc.message}")

    if model_path is None:
        layout = DataLayout(data_dir)
        card = latest_model(layout)
        if card is None:
            return _fail(f"No model in {layout.models_dir} yet: run `fool-the-model train`.")
        model_path, version = layout.model_path(card.version), card.version
    else:
        version = Path(model_path).stem
    try:
        probs = run_batch(load_session(model_path), image[None])[0]
    except ModelError as exc:
        return _fail(str(exc))

    label = int(probs.argmax())
    print(f"{image_path}: {label}  (p={probs[label]:.3f}, model {version})")
    for digit in np.argsort(probs)[::-1][:3]:
        print(f"  {digit}: {probs[digit]:.3f}")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
