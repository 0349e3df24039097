"""Helpers for the learning-loop tests: models installed as the exporter leaves them, a round
of players' drawings."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from data_dirs import add_model

from server.mnist import Mnist
from server.serving.model_files import ModelCard
from server.storage import open_repository
from server.storage.sync import connect

FOOLINGS = range(0, 60)  # MNIST test digits `play_round` verifies as foolings
READ_RIGHT = range(60, 100)  # ...and digits the model read right


def install_model(
    data_dir: Path, version: str, onnx_file: Path, *, parity: float | None = 1e-6
) -> ModelCard:
    """`add_model` with the ONNX/torch parity an export records (the gate checks it), unless
    `parity` is None."""
    return add_model(data_dir, version, onnx_file, parity=parity)


def play_round(database_url: str, mnist: Mnist, order: list[int]) -> None:
    """A new game database with round 1 (model v1) and these drawings, submitted in `order`
    (indices into MNIST test): those in FOOLINGS verified as foolings, the rest read right."""

    async def migrate() -> None:
        await (await open_repository(database_url)).close()

    with ThreadPoolExecutor(1) as pool:  # its own event loop
        pool.submit(asyncio.run, migrate()).result()
    with connect(database_url) as db:
        (player,) = db.execute(
            "INSERT INTO players (name, name_key, token_hash, created_at)"
            " VALUES ('Ada', 'ada', 'hash', 0) RETURNING id"
        ).fetchone()
        (round_id,) = db.execute(
            "INSERT INTO rounds (number, state, model_version, created_at)"
            " VALUES (1, 'open', 'v1', 0) RETURNING id"
        ).fetchone()
        for index in order:
            label = int(mnist.test_labels[index])
            fooled = index in FOOLINGS
            (attempt,) = db.execute(
                "INSERT INTO attempts (player_id, round_id, created_at, strokes, image, label,"
                " predicted, probs, model_version, outcome)"
                " VALUES (?, ?, 0, '[]', ?, ?, ?, ?, 'v1', ?) RETURNING id",
                (
                    player,
                    round_id,
                    (mnist.test_images[index].astype("<f4") / 255.0).tobytes(),
                    label,
                    (label + 1) % 10 if fooled else label,
                    json.dumps([0.1] * 10),
                    "pending" if fooled else "model_won",
                ),
            ).fetchone()
            if fooled:
                db.execute(
                    "UPDATE claims SET state = 'verified', label = ?, by_admin = 1"
                    " WHERE attempt_id = ?",
                    (label, attempt),
                )
