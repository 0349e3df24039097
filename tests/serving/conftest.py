"""Fixtures for the serving tests: an MNIST slice, and data directories holding MNIST. Helpers to
build drawings: serving_helpers.py"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from server.mnist import Mnist


@pytest.fixture
def data_dir(mnist_data_dir: Path) -> Path:
    """Here a data directory holds the shared MNIST cache and no model (a test installs its own)."""
    return mnist_data_dir


@pytest.fixture(scope="session")
def mnist_test_slice(mnist: Mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 500 MNIST test digits as float32 [0, 1] images, with their labels."""
    return mnist.test_images[:500].astype(np.float32) / 255.0, mnist.test_labels[:500]
