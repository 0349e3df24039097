"""The export loads the way researchers load datasets: `datasets.load_dataset(EXPORT_DIR)` with
typed features and a split per round, torchvision's ImageFolder with the digit classes, and
Quick, Draw! tools with its schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_helpers import read_jsonl, records

from server.learning.datacard import DRAWING_FIELDS, VOTE_FIELDS
from server.learning.export import IMAGEFOLDER, STROKES, VOTES, export_dataset

datasets = pytest.importorskip("datasets")


@pytest.fixture
def export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return export_dataset(records(), tmp_path / "export").directory


def load(export: Path, json_file: str | None = None) -> Any:
    """The export as the card says: the repository itself, or one of its JSON lines files."""
    cache = str(export.parent / "cache")
    if json_file is None:
        return datasets.load_dataset(str(export), cache_dir=cache)
    return datasets.load_dataset("json", data_files=str(export / json_file), cache_dir=cache)


def test_load_dataset_gives_typed_features_and_a_split_per_round(export: Path) -> None:
    drawings = load(export)
    assert {name: len(split) for name, split in drawings.items()} == {
        "round_1": 4,
        "round_2": 4,
        "round_3": 4,
    }
    features = drawings["round_1"].features
    assert set(features) == {"image", *DRAWING_FIELDS}
    for name in ("label", "claimed_label", "model_label"):
        assert isinstance(features[name], datasets.ClassLabel), name
        assert features[name].names == [str(d) for d in range(10)]
    assert isinstance(features["image"], datasets.Image)
    first = drawings["round_1"][0]
    assert first["attempt_id"] == 100 and first["label"] == 7 and first["claimed_label"] == 7
    assert np.asarray(first["image"]).shape == (28, 28)
    labels = [label for split in drawings.values() for label in split["label"]]
    assert -1 in labels  # not a digit: no label, the datasets convention


def test_the_votes_load_and_join_the_drawings(export: Path) -> None:
    drawings = load(export)
    votes = load(export, VOTES)["train"]
    assert set(votes.features) == set(VOTE_FIELDS) and len(votes) == 27
    by_attempt = {
        row["attempt_id"]: row
        for split in drawings.values()
        for row in split.remove_columns("image")
    }
    for vote in votes:
        drawing = by_attempt[vote["attempt_id"]]
        assert (vote["round"], vote["player"]) == (drawing["round"], drawing["player"])
    voters = set(votes["voter"])
    assert voters == {row["player"] for row in by_attempt.values()}


def test_the_strokes_load_too(export: Path) -> None:
    strokes = load(export, STROKES)["train"]
    assert len(strokes) == 6
    assert strokes[0]["word"] == "seven" and strokes[0]["label"] == 7


def test_torchvision_sees_the_digit_classes(export: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    folder = torchvision.datasets.ImageFolder(str(export / IMAGEFOLDER / "round_1"))
    rows = read_jsonl(export / IMAGEFOLDER / "round_1" / "metadata.jsonl")
    assert len(folder) == len(rows) == 4
    assert folder.classes == ["0", "7", "not_a_digit"]
    targets = {Path(path).stem: target for path, target in folder.samples}
    for row in rows:
        name = folder.classes[targets[str(row["attempt_id"])]]
        assert name == (str(row["label"]) if row["label"] >= 0 else "not_a_digit")


# Quick, Draw!'s simplified NDJSON, as its README describes the fields.
QUICKDRAW_SCHEMA: dict[str, type] = {
    "key_id": str,
    "word": str,
    "countrycode": str,
    "timestamp": str,
    "recognized": bool,
    "drawing": list,
}


def check_quickdraw(line: dict[str, Any]) -> None:
    for name, kind in QUICKDRAW_SCHEMA.items():
        assert isinstance(line[name], kind), name
    assert re.fullmatch(r"[0-9]+", line["key_id"])
    assert re.fullmatch(r"[a-z ]+", line["word"])
    assert re.fullmatch(r"|[A-Z]{2}", line["countrycode"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC", line["timestamp"])
    assert line["drawing"], "a drawing has at least one stroke"
    for stroke in line["drawing"]:
        xs, ys = stroke
        assert len(xs) == len(ys) >= 1
        assert all(type(v) is int and 0 <= v <= 255 for v in xs + ys)


def test_ndjson_rows_pass_the_quickdraw_schema(export: Path) -> None:
    lines = read_jsonl(export / STROKES)
    assert lines
    for line in lines:
        check_quickdraw(line)
        assert line["word"] == "seven"
        assert line["recognized"] == (line["model_label"] == line["claimed_label"])
        assert sum(len(xs) for xs, _ in line["drawing"]) <= sum(
            len(xs) for xs, _ in line["raw_drawing"]
        )


def test_the_card_describes_the_dataset(export: Path) -> None:
    card = (export / "README.md").read_text()
    assert "license" in card and "cc-by-4.0" in card
    for words in ("Datasheet", "Pseudonymisation", "Consensus", "load_dataset"):
        assert words in card
    for name in [*DRAWING_FIELDS, *VOTE_FIELDS]:
        assert f"`{name}`" in card, name
