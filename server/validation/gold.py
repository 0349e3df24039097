"""Seeding gold tasks from MNIST: digits whose answer is known, to learn each validator's
accuracy from before any claim has settled.

Easy gold alone measures people but not bots: a bot answers it by asking the game's own model.
So the served model's reading is stored with each MNIST gold item, and digits the served model
misreads or is unsure about are added as *hard* gold, from the first minute and again whenever
the served model changes (`refresh_hard_gold`). A validator whose answers on hard gold follow
the model's wrong readings is a model oracle (game_rules.reliability.model_oracle). Settled
claims kept as gold carry the model's reading of the claim (a verified fooling is hard gold).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from server.config import DataLayout
from server.serving.inference import Prediction
from server.serving.preprocess import image_to_png
from server.storage import Repository
from server.storage.consensus import ConsensusStore

log = logging.getLogger(__name__)

GOLD_DIGITS = 500  # MNIST test digits kept as gold (a seeded sample)
HARD_SAMPLE = 2000  # MNIST test digits the served model reads, looking for hard gold
HARD_DIGITS = 150  # hard digits added per served model, at most
UNSURE = 0.7  # a right answer below this probability is hard too

Predict = Callable[[np.ndarray], Awaitable[Prediction]]


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
    await repo.write_consensus(lambda store: store.add_mnist_gold(digits))


async def refresh_hard_gold(layout: DataLayout, repo: Repository, predict: Predict) -> int:
    """Read MNIST test digits with the served model (`predict`): store its label on every MNIST
    gold item, and add up to `HARD_DIGITS` digits it misreads or is unsure about as gold.
    Returns how many hard gold digits (model wrong or unsure) the gold now holds."""
    if not layout.mnist_cache.exists():
        return 0

    def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from server.mnist import load_mnist

        mnist = load_mnist(layout.root)
        gold = np.random.default_rng(0).choice(len(mnist.test_labels), GOLD_DIGITS, False)
        extra = np.random.default_rng(1).choice(len(mnist.test_labels), HARD_SAMPLE, False)
        picks = np.unique(np.concatenate([gold, extra]))
        return picks, mnist.test_images[picks] / 255.0, mnist.test_labels[picks]

    picks, images, truths = await asyncio.to_thread(sample)
    readings: list[Prediction] = []
    for start in range(0, len(picks), 256):  # bounded: the predictor's queue serves players too
        chunk = images[start : start + 256].astype(np.float32)
        readings += await asyncio.gather(*(predict(image) for image in chunk))
    labels = {int(i): r.label for i, r in zip(picks, readings, strict=True)}
    hard = [
        int(i)
        for i, truth, r in zip(picks, truths, readings, strict=True)
        if r.label != int(truth) or max(r.probs) < UNSURE
    ]
    chosen = hard[:HARD_DIGITS]
    where = {int(i): n for n, i in enumerate(picks)}
    digits = [(i, int(truths[where[i]]), image_to_png(images[where[i]])) for i in chosen]
    # Settled claims kept as gold: a fooling the new model now reads right is easy gold now.
    claim_gold = await repo.consensus_reads().claim_gold_images()
    claim_labels: dict[int, int] = {}
    for start in range(0, len(claim_gold), 256):
        batch = claim_gold[start : start + 256]
        seen = [np.frombuffer(image, "<f4").reshape(28, 28) for _, image in batch]
        read = await asyncio.gather(*(predict(image) for image in seen))
        claim_labels.update((gold_id, r.label) for (gold_id, _), r in zip(batch, read, strict=True))

    async def refresh(store: ConsensusStore) -> None:
        await store.add_mnist_gold(digits)
        await store.set_mnist_model_labels(labels)
        await store.set_claim_gold_model_labels(claim_labels)

    await repo.write_consensus(refresh)
    log.info("hard gold refreshed", extra={"hard": len(hard), "added": len(chosen)})
    return len(hard)
