"""Model cards and versions on disk (server/serving/model_files.py, no torch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from server.config import DataLayout
from server.serving.model_files import (
    ModelCard,
    ModelCardError,
    latest_model,
    list_models,
    next_version,
    read_card,
    sha256_file,
    version_number,
    write_card,
)


def _card(version: str = "v1", **changes: Any) -> ModelCard:
    card = ModelCard(
        version=version,
        sha256="ab" * 32,
        created="2026-11-28T00:00:00+00:00",
        architecture="MNIST_Model",
        parent=None,
        training={"mnist_train": 60000, "extra": 0, "mnist_test": 10000},
        mnist_test_accuracy=0.991,
    )
    return dataclasses.replace(card, **changes)


def _add_model(layout: DataLayout, version: str, **changes: object) -> ModelCard:
    layout.models_dir.mkdir(parents=True, exist_ok=True)
    layout.model_path(version).write_bytes(b"onnx " + version.encode())
    card = _card(version, sha256=sha256_file(layout.model_path(version)), **changes)
    write_card(card, layout.model_card_path(version))
    return card


def test_card_round_trips_through_json(tmp_path: Path) -> None:
    card = _card(
        "v3", parent="v2", gate={"onnx_parity": {"passed": True}}, metrics={"train_seconds": 1.5}
    )
    write_card(card, tmp_path / "v3.json")
    assert read_card(tmp_path / "v3.json") == card
    assert [p.name for p in tmp_path.iterdir()] == ["v3.json"]  # no temporary file left


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "cannot read"),
        ("[1, 2]", "not a JSON object"),
        ('{"version": "v1"}', "missing fields"),
    ],
)
def test_unreadable_cards_are_clear_errors(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "v1.json"
    path.write_text(text)
    with pytest.raises(ModelCardError, match=complaint):
        read_card(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "1"),
        ("version", "v0"),
        ("sha256", "xyz"),
        ("parent", "latest"),
        ("training", {"mnist_train": "many"}),
        ("mnist_test_accuracy", 1.5),
        ("mnist_test_accuracy", "high"),
        ("gate", []),
    ],
)
def test_invalid_card_fields_are_named(tmp_path: Path, field: str, value: object) -> None:
    raw = dataclasses.asdict(_card())
    raw[field] = value
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelCardError, match="invalid"):
        read_card(path)


def test_unknown_card_fields_are_refused(tmp_path: Path) -> None:
    raw = dataclasses.asdict(_card()) | {"surprise": 1}
    (tmp_path / "v1.json").write_text(json.dumps(raw))
    with pytest.raises(ModelCardError, match="unknown fields \\['surprise'\\]"):
        read_card(tmp_path / "v1.json")


def test_versions_are_ordered_by_number_not_text(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    for version in ("v10", "v2", "v1"):
        _add_model(layout, version)
    assert [c.version for c in list_models(layout)] == ["v1", "v2", "v10"]
    latest = latest_model(layout)
    assert latest is not None and latest.version == "v10"
    assert next_version(layout) == "v11"


def test_empty_data_dir_has_no_models(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    assert list_models(layout) == []
    assert latest_model(layout) is None
    assert next_version(layout) == "v1"


def test_incomplete_or_broken_models_are_skipped(tmp_path: Path, caplog) -> None:
    layout = DataLayout(tmp_path)
    _add_model(layout, "v1")
    _add_model(layout, "v2")
    layout.model_path("v2").unlink()  # card without its model
    _add_model(layout, "v3")
    layout.model_card_path("v3").write_text("{broken")
    _add_model(layout, "v4")
    write_card(_card("v1"), layout.model_card_path("v4"))  # a card that claims another version
    layout.model_path("v5").write_bytes(b"model without card yet")
    (layout.models_dir / "notes.json").write_text("{}")

    assert [c.version for c in list_models(layout)] == ["v1"]
    assert "v3" in caplog.text and "v4" in caplog.text
    assert next_version(layout) == "v6"  # no number is ever reused


def test_a_weights_file_alone_claims_its_version(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.models_dir.mkdir()
    (layout.models_dir / "v1.pt").write_bytes(b"")
    assert next_version(layout) == "v2"


@pytest.mark.parametrize("bad", ["", "v", "v0", "v01", "V1", "v1.onnx", "v-1", "1"])
def test_version_number_rejects_non_versions(bad: str) -> None:
    with pytest.raises(ValueError, match="not a model version"):
        version_number(bad)


def test_version_number_and_card_number() -> None:
    assert version_number("v12") == 12
    assert _card("v7").number == 7
