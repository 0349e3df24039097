"""Helpers for the learning-loop tests: data directories and installed models."""

from __future__ import annotations

import shutil
from pathlib import Path

from server.config import DataLayout
from server.mnist import load_mnist
from server.serving.model_files import ModelCard, now_iso, sha256_file, write_card

SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def make_data_dir(root: Path) -> Path:
    """A fresh data directory whose MNIST cache is the shared one (linked, not copied)."""
    load_mnist(SHARED_DATA_DIR)  # builds the shared cache on first use
    root.mkdir(parents=True)
    (root / "mnist").symlink_to(DataLayout(SHARED_DATA_DIR).mnist_dir.resolve())
    return root


def install_model(
    data_dir: Path, version: str, onnx_file: Path, *, parity: float | None = 1e-6
) -> ModelCard:
    """Put `onnx_file` in the data directory as `version`, with a card (and a recorded parity)."""
    layout = DataLayout(data_dir)
    layout.models_dir.mkdir(parents=True, exist_ok=True)
    path = layout.model_path(version)
    shutil.copyfile(onnx_file, path)
    gate = {} if parity is None else {"onnx_parity": {"max_abs_diff": parity, "passed": True}}
    card = ModelCard(
        version=version,
        sha256=sha256_file(path),
        created=now_iso(),
        architecture="linear (test)",
        parent=None,
        training={},
        mnist_test_accuracy=0.0,
        gate=gate,
    )
    write_card(card, layout.model_card_path(version))
    return card
