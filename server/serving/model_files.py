"""Model versions on disk: `DATA/models/v1.onnx` with its card `v1.json` (and weights `v1.pt`).

A model card is a small JSON file beside each ONNX file saying what the model is: version, the
sha256 of the .onnx file, when it was made, the architecture, which version it was fine-tuned
from, how much data it saw, its MNIST test accuracy, and room for gate results and metrics.
No torch here: the serving process reads cards to pick the model to serve.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.atomic import atomic_write
from server.config import DataLayout

log = logging.getLogger(__name__)

_VERSION = re.compile(r"v([1-9][0-9]*)")


class ModelCardError(ValueError):
    """A model card file is missing, unreadable or malformed."""


@dataclass
class ModelCard:
    version: str  # "v1", "v2", …
    sha256: str  # of the .onnx file
    created: str  # ISO 8601, UTC
    architecture: str
    parent: str | None  # the version fine-tuned from, None when trained from scratch
    training: dict[str, int]  # data counts: mnist_train, extra, mnist_test
    mnist_test_accuracy: float
    gate: dict[str, Any] = field(default_factory=dict)  # gate checks and their results
    metrics: dict[str, Any] = field(default_factory=dict)  # anything else worth recording

    @property
    def number(self) -> int:
        return version_number(self.version)


def version_number(version: str) -> int:
    """`"v12"` → 12. Raises ValueError for anything that is not a model version."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"not a model version: {version!r} (expected v1, v2, …)")
    return int(match.group(1))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_path_for(model_path: Path) -> Path:
    """The card beside a model file: `x/v3.onnx` → `x/v3.json`."""
    return Path(model_path).with_suffix(".json")


def weights_path_for(model_path: Path) -> Path:
    """The torch weights beside a model file, for fine-tuning: `x/v3.onnx` → `x/v3.pt`."""
    return Path(model_path).with_suffix(".pt")


def write_card(card: ModelCard, path: Path) -> None:
    """Write `card` as JSON to `path` atomically (temporary file, then rename)."""
    text = json.dumps(dataclasses.asdict(card), indent=2, sort_keys=True) + "\n"
    with atomic_write(path, permissions=0o644) as f:
        f.write(text)


def read_card(path: Path) -> ModelCard:
    """Read and validate a card; ModelCardError says what is wrong with it."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"cannot read model card {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelCardError(f"model card {path} is not a JSON object")
    names = {f.name for f in dataclasses.fields(ModelCard)}
    required = {
        f.name for f in dataclasses.fields(ModelCard) if f.default_factory is dataclasses.MISSING
    }
    missing, unknown = required - raw.keys(), raw.keys() - names
    if missing or unknown:
        raise ModelCardError(
            f"model card {path}: missing fields {sorted(missing)}, unknown fields {sorted(unknown)}"
        )
    card = ModelCard(**raw)
    _validate(card, path)
    return card


def _validate(card: ModelCard, path: Path) -> None:
    problems = []
    if not isinstance(card.version, str) or not _VERSION.fullmatch(card.version):
        problems.append(f"version {card.version!r}")
    if not isinstance(card.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", card.sha256):
        problems.append("sha256")
    if not isinstance(card.created, str):
        problems.append("created")
    if not isinstance(card.architecture, str):
        problems.append("architecture")
    if card.parent is not None and not (
        isinstance(card.parent, str) and _VERSION.fullmatch(card.parent)
    ):
        problems.append(f"parent {card.parent!r}")
    if not isinstance(card.training, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in card.training.items()
    ):
        problems.append("training counts")
    accuracy = card.mnist_test_accuracy
    if not isinstance(accuracy, int | float) or not 0 <= accuracy <= 1:
        problems.append(f"mnist_test_accuracy {accuracy!r}")
    if not isinstance(card.gate, dict) or not isinstance(card.metrics, dict):
        problems.append("gate/metrics")
    if problems:
        raise ModelCardError(f"model card {path} has invalid {', '.join(problems)}")


def list_models(layout: DataLayout) -> list[ModelCard]:
    """Every complete model version (card and .onnx present), oldest first.

    A card that cannot be read is skipped with a warning rather than hiding every other model.
    """
    cards = []
    for number in _version_numbers(layout, ".json"):
        version = f"v{number}"
        if not layout.model_path(version).is_file():
            continue
        try:
            card = read_card(layout.model_card_path(version))
        except ModelCardError as exc:
            log.warning("skipping model %s: %s", version, exc)
            continue
        if card.version != version:
            log.warning("skipping model %s: its card says version %s", version, card.version)
            continue
        cards.append(card)
    return cards


def may_serve(card: ModelCard) -> bool:
    """A model may serve when the gate passed it, or when it is a bootstrap model (trained from
    scratch, never gated). A fine-tuned candidate without a verdict (still being gated, or its
    trainer died) may not."""
    passed = card.gate.get("passed")
    return passed is True or (passed is None and card.parent is None)


def latest_model(layout: DataLayout) -> ModelCard | None:
    """The newest model that may serve."""
    models = [card for card in list_models(layout) if may_serve(card)]
    return models[-1] if models else None


def next_version(layout: DataLayout) -> str:
    """One past every version that has any file (.onnx, .json or .pt), so nothing is overwritten."""
    taken = [n for suffix in (".onnx", ".json", ".pt") for n in _version_numbers(layout, suffix)]
    return f"v{max(taken, default=0) + 1}"


def _version_numbers(layout: DataLayout, suffix: str) -> list[int]:
    if not layout.models_dir.is_dir():
        return []
    numbers = []
    for path in layout.models_dir.iterdir():
        match = _VERSION.fullmatch(path.stem)
        if path.suffix == suffix and match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)
