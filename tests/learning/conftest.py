"""Fixtures for the learning-loop tests (helpers to import: learning_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from worker_helpers import Child

from server.mnist import Mnist


@pytest.fixture
def data_dir(mnist_data_dir: Path) -> Path:
    """Here a data directory holds the shared MNIST cache and no model (a test installs its own)."""
    return mnist_data_dir


@pytest.fixture
def test_digits(mnist: Mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 300 MNIST test digits, float32 in [0, 1], and their labels."""
    return mnist.test_images[:300].astype(np.float32) / 255.0, mnist.test_labels[:300]


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Child processes to kill at the end, whatever the test did."""
    started: list[Child] = []
    yield started
    for child in started:
        child.close()
