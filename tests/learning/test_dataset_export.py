"""The dataset export loads back: imagefolder PNGs + metadata.jsonl, strokes, NumPy arrays."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.learning.export import (
    ARRAYS,
    IMAGEFOLDER,
    METADATA,
    STROKES,
    ExportError,
    ExportRecord,
    export_dataset,
    quickdraw_strokes,
    zip_export,
)
from server.pseudonyms import anonymous_player_id, load_or_create_salt
from server.serving.preprocess import strokes_to_image

SEVEN = [[[10.0, 10.0], [60.0, 12.0], [30.0, 80.0]], [[20.0, 45.0], [50.0, 44.0]]]
OUTCOMES = ["verified", "rejected_model_right", "model_won", "rejected_not_digit"]


def records(count: int = 12) -> list[ExportRecord]:
    """Drawings from three rounds; every other one drawn as strokes, the rest PNG uploads."""
    rng = np.random.default_rng(7)
    made = []
    for i in range(count):
        with_strokes = i % 2 == 0
        strokes = [[[x + i, y] for x, y in line] for line in SEVEN] if with_strokes else None
        image = strokes_to_image(strokes) if strokes else rng.random((28, 28), dtype=np.float32)
        outcome = OUTCOMES[i % 4]
        made.append(
            ExportRecord(
                attempt_id=100 + i,
                image=image,
                strokes=strokes,
                label=None if outcome == "rejected_not_digit" else (i * 3) % 10,
                claimed_label=7,
                predicted=(i + 1) % 10,
                consensus_strength=None if outcome == "model_won" else 0.9,
                round=1 + i % 3,
                model_version=f"v{1 + i % 3}",
                player=anonymous_player_id(i % 4, b"s" * 32),
                outcome=outcome,
                votes=[0] * 7 + [3, 0, 0, 1],
            )
        )
    return made


def read_metadata(out: Path) -> list[dict]:
    lines = (out / IMAGEFOLDER / METADATA).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_the_export_loads_back(tmp_path: Path) -> None:
    source = records()
    summary = export_dataset(source, tmp_path / "out")
    out = summary.directory
    assert (summary.count, summary.with_strokes) == (12, 6)

    rows = read_metadata(out)
    assert [row["attempt_id"] for row in rows] == [r.attempt_id for r in source]
    for row, record in zip(rows, source, strict=True):
        assert row["label"] == record.label and row["claimed_label"] == 7
        assert row["model_prediction"] == record.predicted and row["round"] == record.round
        assert row["model_version"] == record.model_version and row["outcome"] == record.outcome
        assert row["player"] == record.player and row["votes"] == {"7": 3, "x": 1}
        png = np.asarray(Image.open(out / IMAGEFOLDER / row["file_name"]))
        assert png.shape == (28, 28) and png.dtype == np.uint8
        assert np.abs(png / 255.0 - record.image).max() <= 0.5 / 255 + 1e-6

    with np.load(out / ARRAYS, allow_pickle=False) as arrays:
        assert arrays["images"].shape == (12, 28, 28) and arrays["images"].dtype == np.uint8
        labels = [-1 if r.label is None else r.label for r in source]
        assert arrays["labels"].tolist() == labels
        assert arrays["attempt_ids"].tolist() == [r.attempt_id for r in source]
        assert arrays["rounds"].tolist() == [r.round for r in source]
        assert arrays["outcomes"].tolist() == [r.outcome for r in source]
        assert arrays["votes"].shape == (12, 11)
        assert np.isnan(arrays["consensus_strength"][2])  # model_won: no consensus
        np.testing.assert_array_equal(
            arrays["images"][0], np.asarray(Image.open(out / IMAGEFOLDER / "100.png"))
        )


def test_strokes_are_written_in_quickdraw_simplified_form(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out").directory
    lines = [json.loads(line) for line in (out / STROKES).read_text().splitlines()]
    assert [line["key_id"] for line in lines] == ["100", "102", "104", "106", "108", "110"]
    first = lines[0]
    assert first["word"] == "0" and first["recognized"] is False
    assert len(first["drawing"]) == 2  # two strokes
    for xs, ys in first["drawing"]:
        assert len(xs) == len(ys)
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in xs + ys)
    every = [v for xs, ys in first["drawing"] for v in xs + ys]
    assert min(every) == 0 and max(every) == 255


def test_quickdraw_scaling_keeps_the_aspect_ratio() -> None:
    assert quickdraw_strokes([[[10, 10], [20, 15]]]) == [[[0, 255], [0, 128]]]
    assert quickdraw_strokes([[[5, 5]]]) == [[[0], [0]]]  # a single dot


def test_filters_by_round_and_outcome(tmp_path: Path) -> None:
    source = records()
    out = export_dataset(source, tmp_path / "out", rounds={1, 3}, outcomes={"verified"}).directory
    expected = [r for r in source if r.round in {1, 3} and r.outcome == "verified"]
    assert expected  # the filter keeps something, and drops something
    assert [row["attempt_id"] for row in read_metadata(out)] == [r.attempt_id for r in expected]
    pngs = sorted((out / IMAGEFOLDER).glob("*.png"))
    assert len(pngs) == len(expected)
    with np.load(out / ARRAYS) as arrays:
        assert len(arrays["labels"]) == len(expected)


def test_an_empty_export_is_still_well_formed(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out", rounds={99}).directory
    assert read_metadata(out) == []
    with np.load(out / ARRAYS) as arrays:
        assert arrays["images"].shape == (0, 28, 28)


def test_a_bad_record_leaves_nothing_behind(tmp_path: Path) -> None:
    source = records(4)
    duplicated = [*source, source[0]]
    with pytest.raises(ExportError, match="attempt 100 appears twice"):
        export_dataset(duplicated, tmp_path / "out")
    broken = [*source, ExportRecord(**{**source[0].__dict__, "attempt_id": 9, "label": 11})]
    with pytest.raises(ExportError, match="attempt 9: label 11 is not a digit"):
        export_dataset(broken, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_dataset(records(2), tmp_path / "out")


def test_the_zip_holds_every_file(tmp_path: Path) -> None:
    out = export_dataset(records(4), tmp_path / "out").directory
    archive = zip_export(out, tmp_path / "export.zip")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert z.read(ARRAYS) == (out / ARRAYS).read_bytes()
    assert {"arrays.npz", "strokes.ndjson", "imagefolder/train/metadata.jsonl"} <= names
    assert "imagefolder/train/100.png" in names and len(names) == 3 + 4


def test_player_ids_are_pseudonymous_per_deployment(tmp_path: Path) -> None:
    salt = load_or_create_salt(tmp_path / "salt")
    assert load_or_create_salt(tmp_path / "salt") == salt  # created once, then reused
    assert stat.S_IMODE((tmp_path / "salt").stat().st_mode) == 0o600
    other = load_or_create_salt(tmp_path / "other-salt")
    assert anonymous_player_id(12, salt) == anonymous_player_id(12, salt)
    assert anonymous_player_id(12, salt) != anonymous_player_id(13, salt)
    assert anonymous_player_id(12, salt) != anonymous_player_id(12, other)
    assert len(anonymous_player_id(12, salt)) == 16
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(ValueError, match="too short"):
        load_or_create_salt(tmp_path / "short")
