"""Seeding gold tasks from MNIST: digits whose answer is known, to learn each validator's
accuracy from before any claim has settled."""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from server.config import DataLayout
from server.serving.preprocess import image_to_png
from server.storage import Repository

log = logging.getLogger(__name__)

GOLD_DIGITS = 500  # MNIST test digits kept as gold (a seeded sample)


async def seed_mnist_gold(layout: DataLayout, repo: Repository) -> None:
    """Store `GOLD_DIGITS` MNIST test digits as gold, once. Never downloads: MNIST gold exists
    only where the cache already is; elsewhere gold comes from settled claims only."""
    if not layout.mnist_cache.exists():
        log.info("no MNIST cache: gold comes from settled claims only")
        return
    if await repo.consensus_reads().gold_digits() >= GOLD_DIGITS:
        return

    def sample() -> list[tuple[int, int, bytes]]:
        from server.mnist import load_mnist

        mnist = load_mnist(layout.root)
        picks = np.random.default_rng(0).choice(len(mnist.test_labels), GOLD_DIGITS, False)
        return [
            (int(i), int(mnist.test_labels[i]), image_to_png(mnist.test_images[i] / 255.0))
            for i in picks
        ]

    digits = await asyncio.to_thread(sample)
    async with repo.consensus() as store:
        await store.add_mnist_gold(digits)
