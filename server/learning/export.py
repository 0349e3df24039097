"""Export the collected drawings for researchers, in three formats at once (no torch).

    out/
      imagefolder/train/<attempt_id>.png   Hugging Face `imagefolder` layout:
      imagefolder/train/metadata.jsonl     load_dataset("imagefolder", data_dir="out/imagefolder")
      strokes.ndjson                        the strokes, Quick, Draw! "simplified" style
      arrays.npz                            NumPy arrays, one row per drawing

Each drawing carries its consensus label (None / -1 when there is none: not settled, or not a
digit), the drawer's claimed label, the model's prediction, the consensus strength, the round and
model version, the outcome, the vote counts and an anonymised player id (an HMAC of the player id
with a per-deployment secret salt: stable within one deployment, meaningless outside it).

The export is built in a temporary directory beside `out` and renamed into place at the end, so
a failed export leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from game_rules.answers import ANSWERS, NOT_A_DIGIT
from server.serving.preprocess import image_to_png

IMAGEFOLDER = Path("imagefolder") / "train"
METADATA = "metadata.jsonl"
STROKES = "strokes.ndjson"
ARRAYS = "arrays.npz"
QUICKDRAW_SIDE = 255  # Quick, Draw! simplified drawings are scaled into 0..255
NO_LABEL = -1


class ExportError(ValueError):
    """A record that cannot be exported, or an output directory that is already there."""


Strokes = Sequence[Sequence[Sequence[float]]]  # [[[x, y], ...], ...] as in the protocol


@dataclass(frozen=True)
class ExportRecord:
    attempt_id: int
    image: np.ndarray  # [28, 28] float32 in [0, 1], white ink on black: what the model saw
    strokes: Strokes | None  # None for PNG uploads
    label: int | None  # the consensus label; None when unsettled or not a digit
    claimed_label: int
    predicted: int  # the model's top class when the drawing was submitted
    consensus_strength: float | None  # the posterior of the consensus answer
    round: int
    model_version: str
    player: str  # anonymised: see server/pseudonyms.py
    outcome: str
    votes: Sequence[int] = field(default=(0,) * ANSWERS)  # counts per answer; [10] = not a digit

    def check(self) -> None:
        if np.shape(self.image) != (28, 28):
            raise ExportError(f"attempt {self.attempt_id}: image must be 28×28")
        if self.label is not None and not 0 <= self.label <= 9:
            raise ExportError(f"attempt {self.attempt_id}: label {self.label} is not a digit")
        if not (0 <= self.claimed_label <= 9 and 0 <= self.predicted <= 9):
            raise ExportError(f"attempt {self.attempt_id}: claimed/predicted must be digits")
        if len(self.votes) != ANSWERS or min(self.votes) < 0:
            raise ExportError(f"attempt {self.attempt_id}: votes must be {ANSWERS} counts >= 0")


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    count: int
    with_strokes: int


def quickdraw_strokes(strokes: Strokes) -> list[list[list[int]]]:
    """Protocol strokes → Quick, Draw! simplified `[[xs], [ys]]` per stroke: moved to the origin
    and scaled (keeping aspect) so the longer side spans 0..255, rounded to integers."""
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    low = points.min(axis=0)
    extent = float((points.max(axis=0) - low).max())
    scale = QUICKDRAW_SIDE / extent if extent > 0 else 1.0
    drawing = []
    for stroke in strokes:
        xy = np.rint((np.asarray(stroke, dtype=np.float64).reshape(-1, 2) - low) * scale)
        if len(xy):
            drawing.append([xy[:, 0].astype(int).tolist(), xy[:, 1].astype(int).tolist()])
    return drawing


def export_dataset(
    records: Iterable[ExportRecord],
    out: Path,
    *,
    rounds: Collection[int] | None = None,
    outcomes: Collection[str] | None = None,
    total: int | None = None,
    show_progress: bool = False,
) -> ExportSummary:
    """Write every record in `rounds` (all if None) with an outcome in `outcomes` (all if None)."""
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new directory for the export")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        summary = _write(work, records, rounds, outcomes, total, show_progress)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ExportSummary(out, summary[0], summary[1])


def _write(
    work: Path,
    records: Iterable[ExportRecord],
    rounds: Collection[int] | None,
    outcomes: Collection[str] | None,
    total: int | None,
    show_progress: bool,
) -> tuple[int, int]:
    images_dir = work / IMAGEFOLDER
    images_dir.mkdir(parents=True)
    columns: dict[str, list[Any]] = {name: [] for name in _ARRAY_COLUMNS}
    seen: set[int] = set()
    with_strokes = 0
    with (
        open(images_dir / METADATA, "w", encoding="utf-8") as metadata,
        open(work / STROKES, "w", encoding="utf-8") as strokes_file,
    ):
        for record in tqdm(records, total=total, disable=not show_progress, unit="drawing"):
            if (rounds is not None and record.round not in rounds) or (
                outcomes is not None and record.outcome not in outcomes
            ):
                continue
            record.check()
            if record.attempt_id in seen:
                raise ExportError(f"attempt {record.attempt_id} appears twice")
            seen.add(record.attempt_id)
            file_name = f"{record.attempt_id}.png"
            (images_dir / file_name).write_bytes(image_to_png(record.image))
            metadata.write(json.dumps({"file_name": file_name, **_fields(record)}) + "\n")
            if record.strokes:
                strokes_file.write(json.dumps(_quickdraw_line(record)) + "\n")
                with_strokes += 1
            _append_row(columns, record)
    arrays: dict[str, Any] = {
        name: np.asarray(values, dtype=_ARRAY_COLUMNS[name]) for name, values in columns.items()
    }
    arrays["images"] = arrays["images"].reshape(-1, 28, 28)
    arrays["votes"] = arrays["votes"].reshape(-1, ANSWERS)
    np.savez_compressed(work / ARRAYS, **arrays)
    return len(seen), with_strokes


def _fields(record: ExportRecord) -> dict[str, Any]:
    return {
        "attempt_id": record.attempt_id,
        "label": record.label,
        "claimed_label": record.claimed_label,
        "model_prediction": record.predicted,
        "consensus_strength": record.consensus_strength,
        "round": record.round,
        "model_version": record.model_version,
        "player": record.player,
        "outcome": record.outcome,
        "votes": {
            ("x" if answer == NOT_A_DIGIT else str(answer)): count
            for answer, count in enumerate(record.votes)
            if count
        },
    }


def _quickdraw_line(record: ExportRecord) -> dict[str, Any]:
    assert record.strokes is not None
    return {
        "key_id": str(record.attempt_id),
        "word": None if record.label is None else str(record.label),
        "recognized": record.label is not None and record.predicted == record.label,
        **_fields(record),
        "drawing": quickdraw_strokes(record.strokes),
    }


_ARRAY_COLUMNS: dict[str, type] = {
    "images": np.uint8,
    "labels": np.int16,
    "claimed_labels": np.int16,
    "predictions": np.int16,
    "consensus_strength": np.float32,
    "rounds": np.int32,
    "attempt_ids": np.int64,
    "model_versions": np.str_,
    "players": np.str_,
    "outcomes": np.str_,
    "votes": np.int32,
}


def _append_row(columns: dict[str, list[Any]], record: ExportRecord) -> None:
    pixels = np.clip(np.asarray(record.image, dtype=np.float32), 0.0, 1.0)
    strength = record.consensus_strength
    columns["images"].append(np.rint(pixels * 255).astype(np.uint8))
    columns["labels"].append(NO_LABEL if record.label is None else record.label)
    columns["claimed_labels"].append(record.claimed_label)
    columns["predictions"].append(record.predicted)
    columns["consensus_strength"].append(np.nan if strength is None else strength)
    columns["rounds"].append(record.round)
    columns["attempt_ids"].append(record.attempt_id)
    columns["model_versions"].append(record.model_version)
    columns["players"].append(record.player)
    columns["outcomes"].append(record.outcome)
    columns["votes"].append(list(record.votes))


def zip_export(directory: Path, zip_path: Path) -> Path:
    """Pack an export directory into one .zip (for the HTTP download), entries in sorted order."""
    directory, zip_path = Path(directory), Path(zip_path)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(directory).as_posix())
        os.replace(tmp, zip_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return zip_path
