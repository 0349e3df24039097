"""Model versions on disk: `DATA/models/v1.onnx` with its card `v1.json` (and weights `v1.pt`).

A model card is a small JSON file beside each ONNX file saying what the model is: version, the
sha256 of the .onnx file, when it was made, the architecture, which version it was fine-tuned
from, how much data it saw, its MNIST test accuracy, and room for gate results and metrics.
It also carries the Hugging Face model-card metadata under Hugging Face's own names
(`HF_CARD_FIELDS`: license, datasets, tags, pipeline_tag, library_name, `model-index` with one
result per evaluation set) and the two prose sections every model card needs (intended use,
limitations). Cards written before those fields existed still read (the fields default).

The ONNX file describes itself too (`ONNX_METADATA`, written by server/training/export.py):
whoever picks the file up alone can read, with onnxruntime's `get_modelmeta()`, what it is and
how to feed it.

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


LICENSE = "cc-by-4.0"
CLASS_NAMES = [str(digit) for digit in range(10)]
INPUT_CONTRACT = (
    "image: float32 [N, 1, 28, 28], values in [0, 1], white ink on black (the MNIST convention)"
)
OUTPUT_CONTRACT = "log_probs: float32 [N, 10], log-probabilities of the digits 0-9"
PREPROCESSING = (
    "crop to the ink's bounding box, fit into 20x20 keeping the aspect ratio, paste into 28x28 "
    "centred on the centre of mass (server/serving/preprocess.py); the MNIST normalisation is "
    "inside the graph"
)
INTENDED_USE = (
    "Recognising one handwritten digit (0-9) per 28x28 image, as the target model of the "
    "Fool the Model game and as a baseline for research on adversarially collected digits."
)
LIMITATIONS = (
    "A small CNN trained on MNIST plus the game's verified drawings: it always answers one of "
    "ten digits (no 'not a digit'), expects MNIST-style preprocessing, and players search for "
    "its mistakes on purpose, so its accuracy on new adversarial drawings is far below MNIST's."
)
# The model card's Hugging Face metadata fields: JSON name → what it holds.
HF_CARD_FIELDS = {
    "license": "the license of the weights (an SPDX-style id Hugging Face knows)",
    "datasets": "the datasets it was trained on",
    "tags": "free keywords",
    "pipeline_tag": "the task: image-classification",
    "library_name": "the runtime that reads it: onnx",
    "base_model": "the version fine-tuned from (null when trained from scratch)",
    "model-index": "one result per evaluation set: task, dataset (name, type, split), metrics",
    "intended_use": "what the model is for",
    "limitations": "what it cannot do",
}
# The ONNX file's metadata_props: key → what it holds (every value a string).
ONNX_METADATA = {
    "version": "the model version (v1, v2, …); model_version holds its number",
    "parent": "the version it was fine-tuned from, empty when trained from scratch",
    "weights_sha256": "sha256 of the initializers, by name order (server/training/export.py)",
    "architecture": "the network's name",
    "input": "the input tensor: name, type, shape, value range, polarity",
    "output": "the output tensor",
    "preprocessing": "how a drawing becomes the input",
    "class_names": "JSON list of the output classes, in order",
    "mnist_test_accuracy": "top-1 accuracy on the MNIST test digits it was measured on",
    "heldout_accuracy": "JSON: accuracy and count on the game's held-out verified drawings",
    "training_data": "JSON: what it was trained on (counts)",
    "license": "the license of the weights",
    "created": "ISO 8601, UTC",
}


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
    # Hugging Face model-card metadata (HF_CARD_FIELDS; `model_index` is written `model-index`)
    license: str = LICENSE
    datasets: list[str] = field(default_factory=lambda: ["mnist"])
    tags: list[str] = field(default_factory=lambda: ["mnist", "onnx", "adversarial"])
    pipeline_tag: str = "image-classification"
    library_name: str = "onnx"
    base_model: str | None = None
    model_index: list[dict[str, Any]] = field(default_factory=list)
    intended_use: str = INTENDED_USE
    limitations: str = LIMITATIONS

    @property
    def number(self) -> int:
        return version_number(self.version)


def evaluation_result(dataset: str, kind: str, split: str, accuracy: float) -> dict[str, Any]:
    """One `model-index` result, in Hugging Face's shape."""
    return {
        "task": {"type": "image-classification", "name": "Digit classification"},
        "dataset": {"name": dataset, "type": kind, "split": split},
        "metrics": [{"type": "accuracy", "value": accuracy, "name": "Accuracy"}],
    }


def model_index(version: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": f"fool-the-model-{version}", "results": results}]


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


# Python attribute → JSON name, where Hugging Face's name is not an identifier.
_JSON_NAMES = {"model_index": "model-index"}


def card_json(card: ModelCard) -> str:
    """The card as JSON text, under Hugging Face's field names."""
    raw = dataclasses.asdict(card)
    for attribute, name in _JSON_NAMES.items():
        raw[name] = raw.pop(attribute)
    return json.dumps(raw, indent=2, sort_keys=True) + "\n"


def write_card(card: ModelCard, path: Path) -> None:
    """Write `card` as JSON to `path` atomically (temporary file, then rename)."""
    text = card_json(card)
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
    for attribute, name in _JSON_NAMES.items():
        if name in raw:
            raw[attribute] = raw.pop(name)
    names = {f.name for f in dataclasses.fields(ModelCard)}
    required = {
        f.name
        for f in dataclasses.fields(ModelCard)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
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
    texts = (card.license, card.pipeline_tag, card.library_name)
    if not all(isinstance(text, str) for text in (*texts, card.intended_use, card.limitations)):
        problems.append("license/pipeline_tag/library_name/intended_use/limitations")
    if not all(isinstance(items, list) for items in (card.datasets, card.tags, card.model_index)):
        problems.append("datasets/tags/model-index")
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
