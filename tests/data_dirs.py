"""Data directories for the tests, built one way: the shared MNIST cache linked in (never
copied, never written), models installed with their cards, and the environment that keeps a
training job on such a directory down to seconds.

The `data_dir` fixtures (tests/conftest.py, and the folders that override it) are built from
these functions; a test that needs more than one directory calls them itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from server.config import DataLayout
from server.mnist import load_mnist
from server.serving.model_files import ModelCard, now_iso, sha256_file, write_card

REPO = Path(__file__).resolve().parent.parent
# The MNIST cache is shared with `make run` so a test session never downloads it twice.
SHARED_DATA_DIR = REPO / "data"

# Tiny training jobs: a slice of MNIST, one epoch, a floor the slice can reach, and no automatic
# trigger unless a test asks for one (`FTM_RETRAIN_POLL_SECONDS`).
# The `linear_onnx_model` fixture: `linear_onnx_model(seed=1)` is the path of a new ONNX model.
LinearModelFactory = Callable[..., Path]

SMALL_JOB = {
    "FTM_TRAIN_LIMIT": "1000",
    "FTM_TEST_LIMIT": "500",
    "FTM_TRAIN_EPOCHS": "1",
    "FTM_GATE_MNIST_FLOOR": "0.5",
    "FTM_RETRAIN_POLL_SECONDS": "3600",
}
JOB_TIMEOUT = 240.0  # seconds a small job may take on two busy cores


def new_data_dir(root: Path, *, mnist: bool = False) -> Path:
    """An empty data directory at `root`; with `mnist`, the shared MNIST cache linked in."""
    root.mkdir(parents=True)
    if mnist:
        link_mnist(root)
    return root


def link_mnist(data_dir: Path) -> None:
    """Link the shared MNIST cache into `data_dir` (built on first use)."""
    load_mnist(SHARED_DATA_DIR)
    (data_dir / "mnist").symlink_to(DataLayout(SHARED_DATA_DIR).mnist_dir.resolve())


def add_model(
    data_dir: Path, version: str, onnx_file: Path, *, parity: float | None = None
) -> ModelCard:
    """Install `onnx_file` as model `version` of the data directory, with its card; `parity`
    records the ONNX/torch difference an exporter would have measured (the gate checks it)."""
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


def trained_data_dir(root: Path, trained_model: Path) -> Path:
    """A data directory a training job can start from: the shared MNIST cache and the session's
    `trained_model` as v1, with its card and its torch weights to fine-tune."""
    new_data_dir(root, mnist=True)
    models = DataLayout(root).models_dir
    models.mkdir()
    for suffix in (".onnx", ".json", ".pt"):
        shutil.copyfile(trained_model.with_suffix(suffix), models / f"v1{suffix}")
    return root
