"""A played game for the leaderboard tests (tests/learning, tests/browser): two rounds of
verified MNIST digits, models v1 and v2 made at known times."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from learning_helpers import install_model

from server.config import DataLayout
from server.mnist import Mnist
from server.serving.model_files import write_card
from server.storage import open_repository
from server.storage.sync import connect

PERCENT = 20  # the packaged retrain.heldout_fraction
START = 1_700_000_000.0
V2_MADE = START + 500  # between round 1's drawings and round 2's


def seed_rounds(data_dir: Path, mnist: Mnist) -> dict[int, list[int]]:
    """Round 1 (model v1, closed) and round 2 (v2, open), 30 verified MNIST test digits each
    (round 1 drawn before v2 was made, round 2 after), plus a few model_won attempts."""
    layout = DataLayout(data_dir)

    async def migrate() -> None:
        await (await open_repository(layout.database_url)).close()

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whoever runs one here
        pool.submit(asyncio.run, migrate()).result()
    ids: dict[int, list[int]] = {1: [], 2: []}
    with connect(layout.database_url) as db:
        (player,) = db.execute(
            "INSERT INTO players (name, name_key, token_hash, created_at)"
            " VALUES ('Ada', 'ada', 'hash', ?) RETURNING id",
            (START,),
        ).fetchone()
        for number, version, state in ((1, "v1", "closed"), (2, "v2", "open")):
            (round_id,) = db.execute(
                "INSERT INTO rounds (number, state, model_version, created_at)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (number, state, version, START),
            ).fetchone()
            for k in range(32):
                index = 30 * (number - 1) + k
                label = int(mnist.test_labels[index])
                created = START + (number - 1) * 1000 + k
                outcome = "model_won" if k >= 30 else "pending"
                (attempt,) = db.execute(
                    "INSERT INTO attempts (player_id, round_id, created_at, strokes, image,"
                    " label, predicted, probs, model_version, outcome)"
                    " VALUES (?, ?, ?, '[]', ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        player,
                        round_id,
                        created,
                        (mnist.test_images[index].astype("<f4") / 255.0).tobytes(),
                        label,
                        label if outcome == "model_won" else (label + 1) % 10,
                        json.dumps([0.1] * 10),
                        version,
                        outcome,
                    ),
                ).fetchone()
                if outcome == "pending":
                    db.execute(
                        "UPDATE claims SET state = 'verified', label = ?, by_admin = 1"
                        " WHERE attempt_id = ?",
                        (label, attempt),
                    )
                    ids[number].append(int(attempt))
    return ids


def install_game_models(data_dir: Path, linear_onnx_model: Callable[..., Path]) -> None:
    layout = DataLayout(data_dir)
    for version, seed, created in (("v1", 1, START - 100), ("v2", 2, V2_MADE)):
        card = install_model(data_dir, version, linear_onnx_model(seed=seed, scale=0.05))
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(created))
        write_card(replace(card, created=iso), layout.model_card_path(version))


def seed_rounds_ids(data_dir: Path) -> dict[int, list[int]]:
    with connect(DataLayout(data_dir).database_url) as db:
        rows = db.execute(
            "SELECT r.number, a.id FROM attempts a JOIN rounds r ON r.id = a.round_id"
            " JOIN claims c ON c.attempt_id = a.id ORDER BY a.id"
        ).fetchall()
    ids: dict[int, list[int]] = {1: [], 2: []}
    for number, attempt in rows:
        ids[int(number)].append(int(attempt))
    return ids
