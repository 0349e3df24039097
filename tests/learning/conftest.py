"""Fixtures for the learning-loop tests (helpers to import: learning_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from learning_helpers import SHARED_DATA_DIR, make_data_dir

from server.mnist import Mnist, load_mnist


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    return load_mnist(SHARED_DATA_DIR)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with the shared MNIST cache and no models."""
    return make_data_dir(tmp_path / "data")


@pytest.fixture
def test_digits(mnist: Mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 300 MNIST test digits, float32 in [0, 1], and their labels."""
    return mnist.test_images[:300].astype(np.float32) / 255.0, mnist.test_labels[:300]
