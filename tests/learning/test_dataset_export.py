"""The dataset export: one dataset in every form (imagefolder per round, Quick, Draw! NDJSON, NumPy
arrays, raw votes), the same fields under the same names, nothing half-written."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from export_helpers import SEVEN, player, read_jsonl, read_metadata, records
from PIL import Image

from server.learning.export import (
    ARRAYS,
    CARD,
    IMAGEFOLDER,
    STROKES,
    VOTES,
    ExportError,
    ExportRecord,
    export_dataset,
    row,
    zip_export,
)
from server.learning.quickdraw import rdp, simplified
from server.pseudonyms import anonymous_player_id, load_or_create_salt


def test_every_form_holds_every_drawing_with_the_same_fields(tmp_path: Path) -> None:
    source = records()
    summary = export_dataset(source, tmp_path / "out")
    out = summary.directory
    assert (summary.count, summary.with_strokes, summary.votes) == (12, 6, 27)
    assert summary.splits == {"round_1": 4, "round_2": 4, "round_3": 4}

    rows = read_metadata(out)
    assert [r["attempt_id"] for r in rows] == [r.attempt_id for r in source]
    for got, record in zip(rows, source, strict=True):
        assert got["split"] == f"round_{record.round}"
        expected = row(record)
        assert {k: got[k] for k in expected} == expected
        png = np.asarray(Image.open(out / IMAGEFOLDER / got["split"] / got["file_name"]))
        assert png.shape == (28, 28) and png.dtype == np.uint8
        assert np.abs(png / 255.0 - record.image).max() <= 0.5 / 255 + 1e-6

    with np.load(out / ARRAYS, allow_pickle=False) as arrays:
        assert arrays["image"].shape == (12, 28, 28) and arrays["image"].dtype == np.uint8
        for name in row(source[0]):
            values = [r[name] for r in rows]
            if arrays[name].dtype == np.float32:
                np.testing.assert_allclose(arrays[name], values, rtol=1e-6, err_msg=name)
            else:
                assert arrays[name].tolist() == values, name
        assert arrays["model_probs"].shape == (12, 10)
        assert arrays["vote_counts"].shape == (12, 11)
        first = rows[0]
        np.testing.assert_array_equal(
            arrays["image"][0],
            np.asarray(Image.open(out / IMAGEFOLDER / first["split"] / first["file_name"])),
        )

    by_id = {r["attempt_id"]: r for r in rows}
    for line in read_jsonl(out / STROKES):
        assert {k: line[k] for k in row(source[0])} == {
            k: by_id[line["attempt_id"]][k] for k in row(source[0])
        }
    assert (out / CARD).read_text().startswith("---\n")


def test_every_settled_drawing_keeps_its_consensus_label(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out").directory
    by_outcome = {r["outcome"]: r for r in read_metadata(out)}
    model_right = by_outcome["rejected_model_right"]
    assert model_right["label"] == model_right["model_label"] != 7
    assert model_right["consensus_strength"] == pytest.approx(0.9)
    assert by_outcome["verified"]["label"] == 7
    assert by_outcome["model_won"]["label"] == 7  # the claim the model confirmed
    assert by_outcome["model_won"]["consensus_strength"] == 0.0  # nobody voted
    assert by_outcome["rejected_not_digit"]["label"] == -1
    not_digit = by_outcome["rejected_not_digit"]["vote_counts"]
    assert not_digit[10] == sum(not_digit) >= 2


def test_images_sit_in_one_folder_per_class(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out").directory
    for r in read_metadata(out):
        folder = r["file_name"].split("/")[0]
        expected = str(r["label"]) if r["label"] >= 0 else "not_a_digit"
        assert folder == expected


def test_votes_join_the_drawings_on_attempt_and_pseudonym(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out").directory
    drawings = {r["attempt_id"]: r for r in read_metadata(out)}
    votes = read_jsonl(out / VOTES)
    assert len(votes) == 27
    for vote in votes:
        drawing = drawings[vote["attempt_id"]]
        shared = ("round", "player", "claimed_label")
        assert {k: vote[k] for k in shared} == {k: drawing[k] for k in shared}
        assert vote["voter"] != vote["player"]  # nobody votes on their own drawing
        assert set(vote) == {*shared, "attempt_id", "voter", "answer", "counted", "timestamp"}
    drawers = {r["player"] for r in drawings.values()}
    assert {v["voter"] for v in votes} == drawers  # the same people, the same pseudonyms
    counted = [v for v in votes if v["counted"] and v["attempt_id"] == 100]
    assert drawings[100]["vote_counts"][7] == len(counted)


def test_strokes_are_quickdraw_lines(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out").directory
    lines = read_jsonl(out / STROKES)
    assert [line["key_id"] for line in lines] == ["100", "102", "104", "106", "108", "110"]
    first = lines[0]
    assert first["word"] == "seven" and first["countrycode"] == ""
    assert first["recognized"] is False  # the model read 1
    assert [line["recognized"] for line in lines if line["outcome"] == "model_won"] == [True] * 3
    assert first["timestamp"] == "2023-11-14 22:13:20.000000 UTC"
    assert first["raw_drawing"] == [[[10.0, 60.0, 30.0], [10.0, 12.0, 80.0]], [[20, 50], [45, 44]]]
    assert len(first["drawing"]) == 2  # two strokes
    every = [v for xs, ys in first["drawing"] for v in xs + ys]
    assert min(every) == 0 and max(every) == 255


def test_quickdraw_simplification_aligns_scales_and_drops_collinear_points() -> None:
    assert simplified([[[10, 10], [20, 15]]]) == [[[0, 255], [0, 128]]]
    assert simplified([[[5, 5]]]) == [[[0], [0]]]  # a single dot
    line = [[x, 3 * x] for x in range(0, 86, 5)]  # 18 points on one straight line
    assert simplified([line]) == [[[0, 85], [0, 255]]]
    bent = np.array([[0, 0], [50, 1], [100, 0], [100, 100]], dtype=float)
    assert rdp(bent, epsilon=2.0).tolist() == [[0, 0], [100, 0], [100, 100]]
    assert rdp(bent, epsilon=0.5).tolist() == bent.tolist()
    assert len(simplified(SEVEN)) == 2


def test_filters_by_round_and_outcome(tmp_path: Path) -> None:
    source = records()
    out = export_dataset(source, tmp_path / "out", rounds={1, 3}, outcomes={"verified"}).directory
    expected = [r for r in source if r.round in {1, 3} and r.outcome == "verified"]
    assert expected  # the filter keeps something, and drops something
    assert [r["attempt_id"] for r in read_metadata(out)] == [r.attempt_id for r in expected]
    assert len(list((out / IMAGEFOLDER).rglob("*.png"))) == len(expected)
    with np.load(out / ARRAYS) as arrays:
        assert len(arrays["label"]) == len(expected)


def test_one_format_still_brings_the_card_and_the_votes(tmp_path: Path) -> None:
    out = export_dataset(records(), tmp_path / "out", formats=["numpy"]).directory
    assert sorted(p.name for p in out.iterdir()) == [CARD, ARRAYS, VOTES]


def test_an_empty_selection_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"nothing to export: no drawing in round 99 \("):
        export_dataset(records(), tmp_path / "out", rounds={99})
    with pytest.raises(ExportError, match="no drawing in the game yet"):
        export_dataset([], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


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
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == files
    assert {CARD, ARRAYS, STROKES, VOTES, "imagefolder/round_1/metadata.jsonl"} <= names
    assert "imagefolder/round_1/7/100.png" in names


def test_player_ids_are_pseudonymous_per_deployment(tmp_path: Path) -> None:
    salt = load_or_create_salt(tmp_path / "salt")
    assert load_or_create_salt(tmp_path / "salt") == salt  # created once, then reused
    assert stat.S_IMODE((tmp_path / "salt").stat().st_mode) == 0o600
    other = load_or_create_salt(tmp_path / "other-salt")
    assert anonymous_player_id(12, salt) == anonymous_player_id(12, salt)
    assert anonymous_player_id(12, salt) != anonymous_player_id(13, salt)
    assert anonymous_player_id(12, salt) != anonymous_player_id(12, other)
    assert len(anonymous_player_id(12, salt)) == 16 == len(player(1))
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(ValueError, match="too short"):
        load_or_create_salt(tmp_path / "short")
