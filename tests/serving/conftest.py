"""Fixtures for the serving tests: an MNIST slice. Helpers to build drawings: serving_helpers.py"""

from __future__ import annotations

import numpy as np
import pytest
from serving_helpers import SHARED_DATA_DIR


@pytest.fixture(scope="session")
def mnist_test_slice() -> tuple[np.ndarray, np.ndarray]:
    """The first 500 MNIST test digits as float32 [0, 1] images, with their labels."""
    from server.mnist import load_mnist

    mnist = load_mnist(SHARED_DATA_DIR)
    return mnist.test_images[:500].astype(np.float32) / 255.0, mnist.test_labels[:500]
