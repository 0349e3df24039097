"""Helpers for the learning-loop tests: models installed as the exporter leaves them."""

from __future__ import annotations

from pathlib import Path

from data_dirs import add_model

from server.serving.model_files import ModelCard


def install_model(
    data_dir: Path, version: str, onnx_file: Path, *, parity: float | None = 1e-6
) -> ModelCard:
    """`add_model` with the ONNX/torch parity an export records (the gate checks it), unless
    `parity` is None."""
    return add_model(data_dir, version, onnx_file, parity=parity)
