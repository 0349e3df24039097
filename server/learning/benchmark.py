"""The model leaderboard on the collected rounds, Dynabench-style but offline-first.

Any ONNX file that honours the serving contract (server/serving/inference.py) is scored on the
MNIST test digits and on every round's verified adversarial set: the drawings whose consensus is
a digit the round's model missed (`verified`, `relabelled`). Scores stay honest by leaving out,
per model, what it may have been trained on:

- one of the game's versions was trained on every verified drawing that existed when it was
  made, except the held-out slice (`game_rules.heldout`): it is scored on the held-out drawings
  and on everything drawn after it was created;
- an outside model may have been trained on any exported drawing: it is scored on the held-out
  drawings only.

Outside models are registered by an admin (`register_outside_model`): the file's size is capped
and its contract checked by loading it in ONNX Runtime and running a batch, in a child process
(a file that crashes or hangs the runtime costs that process only). An ONNX file is a graph of
standard operators, not code: nothing from it is ever imported or executed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from game_rules.heldout import content_key, held_out
from server.atomic import atomic_write
from server.config import DataLayout
from server.learning.data import VERIFIED_STATES, round_stats
from server.mnist import Mnist, load_mnist
from server.serving.inference import ModelError, load_session, run_batch
from server.serving.model_files import list_models, may_serve, sha256_file
from server.serving.preprocess import image_to_png
from server.storage.sync import connect

MAX_MODEL_BYTES = 20 * 1024 * 1024
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
FOOLING_SHOWN = 6  # drawings per model and round on the models page
BATCH = 512


class BenchmarkError(ValueError):
    """A model that cannot be scored or registered; the message says what to fix."""


def outside_models_dir(layout: DataLayout) -> Path:
    """Where registered outside models live: `DATA/outside_models/NAME.onnx` + `NAME.json`."""
    return layout.root / "outside_models"


@dataclass(frozen=True)
class RoundSet:
    """One round's verified adversarial drawings."""

    number: int
    attempt_ids: np.ndarray  # int64 [N]
    images: np.ndarray  # float32 [N, 28, 28] in [0, 1]
    labels: np.ndarray  # int64 [N], the consensus digits
    created: np.ndarray  # float64 [N], Unix time of each submission
    heldout: np.ndarray  # bool [N]


def round_sets(database_url: str, percent: int) -> list[RoundSet]:
    """Every round that has verified drawings, oldest first."""
    with connect(database_url) as db:
        rows = db.execute(
            "SELECT a.id, r.number, a.image, c.label, a.created_at"
            " FROM claims c JOIN attempts a ON a.id = c.attempt_id"
            " JOIN rounds r ON r.id = a.round_id"
            f" WHERE c.state IN {VERIFIED_STATES!r} AND c.label BETWEEN 0 AND 9"
            " ORDER BY r.number, a.id"
        ).fetchall()
    # The split the learning loop makes (server/learning/data.py): over every verified drawing.
    keys = [content_key(np.frombuffer(r[2], "<f4")) for r in rows]
    held = dict(zip((int(r[0]) for r in rows), held_out(keys, percent), strict=True))
    sets = []
    for number in sorted({int(r[1]) for r in rows}):
        mine = [r for r in rows if int(r[1]) == number]
        ids = np.array([int(r[0]) for r in mine], dtype=np.int64)
        sets.append(
            RoundSet(
                number=number,
                attempt_ids=ids,
                images=np.stack([np.frombuffer(r[2], "<f4").reshape(28, 28) for r in mine]),
                labels=np.array([int(r[3]) for r in mine], dtype=np.int64),
                created=np.array([float(r[4]) for r in mine]),
                heldout=np.array([held[int(i)] for i in ids], dtype=bool),
            )
        )
    return sets


@dataclass(frozen=True)
class Entrant:
    name: str
    path: Path
    kind: str  # "game" or "outside"
    created: float | None  # a game model's creation (Unix time); None for outside models

    def scored_on(self, drawings: RoundSet) -> np.ndarray:
        """The drawings this model cannot have been trained on (see the module docstring)."""
        if self.created is None:
            return drawings.heldout
        return drawings.heldout | (drawings.created > self.created)


@dataclass
class RoundScore:
    number: int
    count: int
    accuracy: float | None  # None when no drawing of the round may be used
    fooling: list[int] = field(default_factory=list)  # attempt ids it still gets wrong


@dataclass
class ModelScore:
    name: str
    kind: str
    mnist: float | None
    rounds: list[RoundScore]


def game_entrants(layout: DataLayout) -> list[Entrant]:
    """The game's versions that passed the gate (or bootstrapped), oldest first."""
    return [
        Entrant(card.version, layout.model_path(card.version), "game", _unix(card.created))
        for card in list_models(layout)
        if may_serve(card)
    ]


def outside_entrants(layout: DataLayout) -> list[Entrant]:
    """The outside models an admin registered, by name."""
    folder = outside_models_dir(layout)
    if not folder.is_dir():
        return []
    return [
        Entrant(path.stem, path, "outside", None)
        for path in sorted(folder.glob("*.onnx"))
        if path.with_suffix(".json").is_file()
    ]


def file_entrant(path: Path) -> Entrant:
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"no model file at {path}")
    return Entrant(path.name, path, "outside", None)


def _unix(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


# MNIST accuracy per model file (path, mtime, size, test size): it never changes while the file
# does not, and it is most of the scoring time; the rounds are rescored as drawings arrive.
_MNIST_SCORES: dict[tuple[str, int, int, int], float] = {}


def score(entrant: Entrant, sets: list[RoundSet], mnist: Mnist | None) -> ModelScore:
    """Accuracy on MNIST test (when given) and on each round's usable verified drawings."""
    try:
        session = load_session(entrant.path, threads=1)
    except ModelError as error:
        raise BenchmarkError(f"{entrant.name}: {error}") from error

    def guesses(images: np.ndarray) -> np.ndarray:
        out = [run_batch(session, images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
        return np.concatenate(out).argmax(axis=1) if out else np.zeros(0, np.int64)

    mnist_accuracy = None
    if mnist is not None:
        stat = entrant.path.stat()
        key = (str(entrant.path.resolve()), stat.st_mtime_ns, stat.st_size, len(mnist.test_labels))
        if key not in _MNIST_SCORES:
            pixels = mnist.test_images.astype(np.float32) / 255.0
            _MNIST_SCORES[key] = float((guesses(pixels) == mnist.test_labels).mean())
        mnist_accuracy = _MNIST_SCORES[key]
    rounds = []
    for drawings in sets:
        usable = entrant.scored_on(drawings)
        if not usable.any():
            rounds.append(RoundScore(drawings.number, 0, None))
            continue
        wrong = guesses(drawings.images[usable]) != drawings.labels[usable]
        rounds.append(
            RoundScore(
                drawings.number,
                int(usable.sum()),
                float(1.0 - wrong.mean()),
                drawings.attempt_ids[usable][wrong].tolist(),
            )
        )
    return ModelScore(entrant.name, entrant.kind, mnist_accuracy, rounds)


def mnist_if_cached(layout: DataLayout) -> Mnist | None:
    """MNIST when the data directory has its cache; never downloads (a page must not wait)."""
    return load_mnist(layout.root) if layout.mnist_cache.is_file() else None


def leaderboard(layout: DataLayout, percent: int, extra: Sequence[Entrant] = ()) -> dict[str, Any]:
    """Everything the models page and the CLI table show, JSON-ready."""
    sets = round_sets(layout.database_url, percent)
    mnist = mnist_if_cached(layout)
    entrants = [*game_entrants(layout), *outside_entrants(layout), *extra]
    scores = [score(entrant, sets, mnist) for entrant in entrants]
    images = {int(i): image for s in sets for i, image in zip(s.attempt_ids, s.images, strict=True)}
    stats = {r.number: r for r in round_stats(layout.database_url)}
    return {
        "rounds": [
            {
                "number": s.number,
                "model_version": stats[s.number].model_version if s.number in stats else None,
                "verified": len(s.labels),
                "heldout": int(s.heldout.sum()),
                "vmer": stats[s.number].vmer if s.number in stats else None,
            }
            for s in sets
        ],
        "models": [
            {
                "name": m.name,
                "kind": m.kind,
                "mnist_accuracy": m.mnist,
                "rounds": [
                    {
                        "number": r.number,
                        "count": r.count,
                        "accuracy": r.accuracy,
                        "fooling": [
                            {"attempt_id": i, "png": _data_url(images[i])}
                            for i in r.fooling[:FOOLING_SHOWN]
                        ],
                        "fooling_count": len(r.fooling),
                    }
                    for r in m.rounds
                ],
            }
            for m in scores
        ],
    }


def _data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(image_to_png(image)).decode()


def register_outside_model(layout: DataLayout, name: str, data: bytes) -> dict[str, Any]:
    """Check and store an uploaded model under `name`; its record. Raises BenchmarkError."""
    if not NAME.fullmatch(name):
        raise BenchmarkError(
            "A model name is 1–40 lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit."
        )
    if not data:
        raise BenchmarkError("The upload is empty: send the .onnx file as the request body.")
    if len(data) > MAX_MODEL_BYTES:
        raise BenchmarkError(
            f"The model is {len(data) / 1e6:.1f} MB; the limit is {MAX_MODEL_BYTES / 1e6:.0f} MB."
        )
    folder = outside_models_dir(layout)
    path = folder / f"{name}.onnx"
    if path.exists():
        raise BenchmarkError(f"An outside model named {name} exists already; choose another name.")
    folder.mkdir(parents=True, exist_ok=True)
    candidate = folder / f".{name}.candidate.onnx"
    candidate.write_bytes(data)
    try:
        _check_contract(candidate)
        record = {
            "name": name,
            "sha256": sha256_file(candidate),
            "bytes": len(data),
            "registered": time.time(),
        }
        candidate.replace(path)
    finally:
        candidate.unlink(missing_ok=True)
    with atomic_write(path.with_suffix(".json"), permissions=0o644) as f:
        f.write(json.dumps(record, indent=2) + "\n")
    return record


CHECK_SECONDS = 60


def _check_contract(path: Path) -> None:
    """Run `check_contract` in a child process, so a model that crashes or hangs ONNX Runtime
    costs that process only, never the server."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "server.learning.benchmark", str(path)],
            capture_output=True,
            text=True,
            timeout=CHECK_SECONDS,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(
            f"ONNX Runtime did not finish one batch in {CHECK_SECONDS} s; the model is refused."
        ) from error
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise BenchmarkError(lines[-1] if lines else f"the check crashed ({done.returncode})")


def check_contract(path: Path) -> None:
    """Load in ONNX Runtime (input/output names, types and shapes are checked there) and run a
    batch of two: the answer must be [2, 10] finite log-probabilities."""
    try:
        session = load_session(path, threads=1)
        probs = run_batch(session, np.zeros((2, 28, 28), np.float32))
    except ModelError as error:
        raise BenchmarkError(f"The model does not honour the contract: {error}") from error
    except Exception as error:  # ONNX Runtime raises its own exception types on bad graphs
        message = " ".join(str(error).split())
        raise BenchmarkError(f"ONNX Runtime cannot run the model: {message}") from error
    if probs.shape != (2, 10) or not np.isfinite(probs).all():
        raise BenchmarkError(
            f"The model answered shape {list(probs.shape)}; the contract is `log_probs` "
            "float32 [N, 10] (finite)."
        )


def table(board: dict[str, Any]) -> str:
    """The leaderboard as a plain-text table: one row per model, one column per round."""
    rounds = board["rounds"]
    head = ["model", "kind", "MNIST"] + [f"round {r['number']}" for r in rounds]
    lines = [head]
    for model in board["models"]:
        cells = [model["name"], model["kind"], _percent(model["mnist_accuracy"])]
        for r in model["rounds"]:
            cells.append(f"{_percent(r['accuracy'])} ({r['count']})")
        lines.append(cells)
    vmer = ["vMER", "", ""] + [
        f"{_percent(r['vmer'])} {r['model_version'] or ''}".strip() for r in rounds
    ]
    lines.append(vmer)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.insert(len(text) - 1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in text)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


NOTE = (
    "Accuracy (drawings scored): a game version on the held-out drawings and on those drawn "
    "after it was made; an outside model on the held-out drawings only"
)


if __name__ == "__main__":  # the child process of `_check_contract`
    try:
        check_contract(Path(sys.argv[1]))
    except BenchmarkError as error:
        print(" ".join(str(error).split()), file=sys.stderr)
        sys.exit(1)
