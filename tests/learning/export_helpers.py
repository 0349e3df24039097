"""Export records from a small played game: three rounds, every outcome, strokes and PNGs, votes
by players who also draw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from server.learning.export import IMAGEFOLDER, METADATA, ExportRecord, VoteRecord
from server.pseudonyms import anonymous_player_id
from server.serving.preprocess import strokes_to_image

SALT = b"s" * 32
SEVEN = [[[10.0, 10.0], [60.0, 12.0], [30.0, 80.0]], [[20.0, 45.0], [50.0, 44.0]]]
OUTCOMES = ["verified", "rejected_model_right", "model_won", "rejected_not_digit"]


def player(player_id: int) -> str:
    return anonymous_player_id(player_id, SALT)


def records(count: int = 12) -> list[ExportRecord]:
    """Drawings from three rounds; every other one drawn as strokes, the rest PNG uploads.
    Claims get three votes, from the players who did not draw them."""
    rng = np.random.default_rng(7)
    made = []
    for i in range(count):
        with_strokes = i % 2 == 0
        strokes = [[[x + i, y] for x, y in line] for line in SEVEN] if with_strokes else None
        image = strokes_to_image(strokes) if strokes else rng.random((28, 28), dtype=np.float32)
        outcome = OUTCOMES[i % 4]
        drawer = i % 4
        model_label = 7 if outcome == "model_won" else (i + 1) % 10
        answer = {"verified": 7, "rejected_model_right": model_label, "rejected_not_digit": 10}
        votes = (
            []
            if outcome == "model_won"
            else [
                VoteRecord(player(voter), answer[outcome], voter != 3, 1_700_000_100.0 + i)
                for voter in range(4)
                if voter != drawer
            ]
        )
        made.append(
            ExportRecord(
                attempt_id=100 + i,
                image=image,
                strokes=strokes,
                label=None if outcome == "rejected_not_digit" else answer.get(outcome, 7),
                claimed_label=7,
                model_label=model_label,
                model_probs=np.eye(10)[model_label].tolist(),
                consensus_strength=None if outcome == "model_won" else 0.9,
                round=1 + i % 3,
                model_version=f"v{1 + i % 3}",
                player=player(drawer),
                outcome=outcome,
                timestamp=1_700_000_000.0 + i,
                votes=votes,
            )
        )
    return made


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_metadata(out: Path) -> list[dict[str, Any]]:
    """Every drawing's metadata row, round by round."""
    rows = []
    for split in sorted((out / IMAGEFOLDER).iterdir()):
        rows += [{**r, "split": split.name} for r in read_jsonl(split / METADATA)]
    return sorted(rows, key=lambda r: r["attempt_id"])
