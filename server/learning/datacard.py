"""The data card: the README.md that makes an export directory a Hugging Face dataset repository.

Its YAML header is what `datasets.load_dataset(EXPORT_DIR)` reads: the imagefolder `drawings`,
a split per round, and the features with `ClassLabel` names, so labels load typed. A dataset
repository is read by one builder (inferred from the first config's files), so the JSON lines
beside it (votes, strokes) are loaded with the `json` builder, as the card shows. The rest is
the datasheet (how the drawings were collected, how the consensus is reached, how players are
pseudonymised) and the loading instructions. Every field is described once, here, in
`DRAWING_FIELDS` and `VOTE_FIELDS`; the export writes exactly these names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

LICENSE = "cc-by-4.0"  # as Quick, Draw!'s drawings: reuse with attribution
DIGITS = [str(d) for d in range(10)]
ANSWER_NAMES = [*DIGITS, "not_a_digit"]


def _class_label(names: list[str]) -> dict[str, Any]:
    return {"class_label": {"names": {str(i): name for i, name in enumerate(names)}}}


# name → (Hugging Face feature, description). The NumPy arrays use the same names.
DRAWING_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "attempt_id": ({"dtype": "int64"}, "the drawing's id; votes.jsonl joins on it"),
    "round": ({"dtype": "int32"}, "the round it was drawn in (one model version per round)"),
    "label": (
        {"dtype": _class_label(DIGITS)},
        "the consensus digit, whatever the outcome (for `model_won`, where nobody votes, the "
        "claim the model confirmed); -1 when there is none (not a digit, or not settled)",
    ),
    "claimed_label": ({"dtype": _class_label(DIGITS)}, "the digit the drawer said it shows"),
    "model_label": ({"dtype": _class_label(DIGITS)}, "the served model's top class"),
    "model_probs": ({"list": "float32"}, "the served model's 10 probabilities"),
    "model_version": ({"dtype": "string"}, "the model the drawing was made against (v1, v2, …)"),
    "outcome": (
        {"dtype": "string"},
        "model_won (the model read the claim), verified (the crowd confirmed a fool), relabelled "
        "(the crowd saw another digit), rejected_model_right, rejected_not_digit, pending, "
        "disputed",
    ),
    "consensus_strength": (
        {"dtype": "float32"},
        "the crowd's posterior for its answer (1.0 when an admin decided); 0.0 without votes",
    ),
    "player": ({"dtype": "string"}, "the drawer's pseudonym, shared with votes.jsonl"),
    "timestamp": ({"dtype": "string"}, "submission time, `YYYY-MM-DD HH:MM:SS.ffffff UTC`"),
    "vote_counts": (
        {"list": "int32"},
        "counted votes per answer: 11 numbers, index 10 = not a digit",
    ),
}
QUICKDRAW_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "key_id": ({"dtype": "string"}, "the drawing's id (= attempt_id), as a string"),
    "word": ({"dtype": "string"}, "the claimed digit's English name (zero … nine)"),
    "countrycode": ({"dtype": "string"}, 'always "": not collected'),
    "recognized": ({"dtype": "bool"}, "whether the model read the claimed digit"),
    "drawing": (
        {"list": {"list": {"list": "int32"}}},
        "Quick, Draw! simplified strokes `[[xs], [ys]]`: top-left aligned, scaled to 0–255, RDP "
        "ε = 2",
    ),
    "raw_drawing": (
        {"list": {"list": {"list": "float32"}}},
        "the strokes as drawn, `[[xs], [ys]]` in canvas pixels",
    ),
}
VOTE_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "attempt_id": ({"dtype": "int64"}, "the drawing voted on"),
    "round": DRAWING_FIELDS["round"],
    "player": ({"dtype": "string"}, "the drawer's pseudonym"),
    "claimed_label": DRAWING_FIELDS["claimed_label"],
    "voter": ({"dtype": "string"}, "the voter's pseudonym (the same pseudonym when they draw)"),
    "answer": ({"dtype": _class_label(ANSWER_NAMES)}, "what the voter saw: 0–9 or not_a_digit"),
    "counted": (
        {"dtype": "bool"},
        "whether it counted (voters still on probation and banned voters do not)",
    ),
    "timestamp": ({"dtype": "string"}, "when the vote was cast"),
}


@dataclass(frozen=True)
class CardFacts:
    formats: list[str]  # of export.FORMATS
    splits: dict[str, int]  # round_N → drawings
    outcomes: dict[str, int]
    with_strokes: int
    votes: int


def header(facts: CardFacts) -> dict[str, Any]:
    """The card's YAML metadata as data (Hugging Face dataset card fields)."""
    total = sum(facts.splits.values())
    configs: list[dict[str, Any]] = []
    if "imagefolder" in facts.formats:
        configs.append(
            {
                "config_name": "drawings",
                "default": True,
                "data_files": [
                    {"split": split, "path": f"imagefolder/{split}/**"} for split in facts.splits
                ],
                "features": _features({"image": ({"dtype": "image"}, ""), **DRAWING_FIELDS}),
            }
        )
    return {
        "pretty_name": "Fool the Model: adversarial handwritten digits",
        "license": LICENSE,
        "task_categories": ["image-classification"],
        "task_ids": ["multi-class-image-classification"],
        "size_categories": [_size_category(total)],
        "tags": ["mnist", "adversarial", "dynamic-adversarial-data-collection", "quickdraw"],
        "annotations_creators": ["crowdsourced"],
        "source_datasets": ["original"],
        "configs": configs,
    }


def _features(fields: dict[str, tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    return [{"name": name, **feature} for name, (feature, _) in fields.items()]


def _size_category(count: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if count < limit:
            return name
    return "100K<n<1M"


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars (strings quoted as JSON, which YAML reads):
    enough for the card, without a YAML dependency in the server."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{json.dumps(str(key))}:\n{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{json.dumps(str(key))}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {inner.lstrip()}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


def _table(fields: dict[str, tuple[dict[str, Any], str]]) -> str:
    rows = [f"| `{name}` | {text} |" for name, (_, text) in fields.items()]
    return "\n".join(["| field | meaning |", "| --- | --- |", *rows])


def render(facts: CardFacts) -> str:
    """The whole README.md of an export."""
    total = sum(facts.splits.values())
    splits = "\n".join(f"| `{name}` | {count} |" for name, count in facts.splits.items())
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(facts.outcomes.items()))
    first = next(iter(facts.splits))
    return f"""---
{to_yaml(header(facts))}
---

# Fool the Model: adversarial handwritten digits

{total} handwritten digits drawn by players of *Fool the Model*, a game of dynamic adversarial
data collection on MNIST: players draw a digit and try to make the served CNN misread it; other
players label the drawing blind, and a fooling counts only once their consensus confirms it.
Each round has one frozen model, so each round's split is an adversarial test set for it (and,
once verified, training data for the next model).

| split | drawings |
| --- | --- |
{splits}

Outcomes: {outcomes}. Raw votes: {facts.votes}. Drawings with strokes: {facts.with_strokes}.

## Loading

```python
from datasets import load_dataset

drawings = load_dataset("EXPORT_DIR")             # a split per round: {first}, …
votes = load_dataset("json", data_files="EXPORT_DIR/votes.jsonl")["train"]
strokes = load_dataset("json", data_files="EXPORT_DIR/strokes.ndjson")["train"]
verified = drawings["{first}"].filter(lambda d: d["outcome"] == "verified")
```

- torchvision: `ImageFolder("EXPORT_DIR/imagefolder/{first}")` sees one class per folder: the
  digits `0`–`9`, then `not_a_digit` and `unlabelled` (no consensus) when the round has such
  drawings. Its class indices count only the folders present: read the digit as
  `int(folder.classes[target])`.
- NumPy: `numpy.load("EXPORT_DIR/arrays.npz")`: the same fields as arrays, plus `image`
  (uint8 [N, 28, 28], white ink on black, what the model saw), `model_probs` [N, 10] and
  `vote_counts` [N, 11].
- Quick, Draw! tools: `strokes.ndjson` (drawn digits only; PNG uploads have no strokes).

Each form is there when the export asked for it: {", ".join(facts.formats)}.

## Fields

Every form uses these names (`drawings`, `strokes.ndjson`, `arrays.npz`):

{_table(DRAWING_FIELDS)}

`strokes.ndjson` adds Quick, Draw!'s own fields:

{_table(QUICKDRAW_FIELDS)}

`votes.jsonl`, one line per vote:

{_table(VOTE_FIELDS)}

## Datasheet

**Collection.** Players draw on a 28×28-scaled canvas in the browser (or upload a PNG) and name
the digit they drew. The server renders the strokes, crops the ink, fits it into 20×20 and
centres its mass in 28×28, the MNIST way; `image` is exactly what the model saw. The served
model's answer is computed by the server, never taken from the client. If the model reads the
claimed digit the attempt is `model_won`; otherwise it becomes a claim for validation.

**Consensus.** Validators see the drawing without the claim and answer a digit or "not a digit".
Gold items with known answers, mixed in unannounced, estimate each validator's confusion matrix;
votes are combined as a Dawid–Skene posterior over the 11 answers (prior: the drawer's track
record on the claim). A claim settles once enough trusted voters agree beyond a threshold;
unclear claims go to an admin (`disputed`). `consensus_strength` is the posterior of the
settled answer. Verified = consensus is the claim and differs from the model.

**Pseudonymisation.** `player` and `voter` are HMAC-SHA256 of the player's id with a secret salt
of the deployment (16 hex digits): the same person has the same pseudonym in drawings and votes
of every export of that deployment, and no pseudonym can be traced back without the salt.
Player names are never exported.

**Uses and limits.** Made for measuring and improving robustness of digit classifiers
(Dynabench-style rounds: train on earlier rounds, test on later ones). The drawers are game
players, not a representative sample; drawings are mouse or finger strokes, unlike MNIST's pen
scans; rounds are small and a round's drawings target one model's weaknesses.

**License.** {LICENSE.upper()}.
"""
