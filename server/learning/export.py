"""Export the collected drawings for researchers: one dataset, in every form at once (no torch).

    out/
      README.md                                the data card (server/learning/datacard.py): the
                                               YAML header `datasets.load_dataset(out)` reads,
                                               then the datasheet and loading instructions
      imagefolder/round_N/<label>/<id>.png     one split per round, one folder per class
      imagefolder/round_N/metadata.jsonl       every field of each drawing of the round
      strokes.ndjson                           the strokes, in Google's Quick, Draw! format
      arrays.npz                               NumPy arrays, one row per drawing
      votes.jsonl                              every raw vote on the exported drawings

Every form carries the same fields under the same names (`FIELDS`, documented in the data card):
the label (the crowd's consensus digit whatever the outcome; for a drawing the model read as
claimed, that claim), the claimed label, the model's label and probabilities, the model version,
the round, the outcome, the consensus strength, the time, the counted votes per answer and the
drawer's pseudonym, which is also the voters' pseudonym in votes.jsonl (server/pseudonyms.py),
so drawings and votes join on `attempt_id` and on players. No nulls: a missing label is -1 and
a missing consensus strength 0.0 (a null-only column would make a split's schema differ).

The export is built in a temporary directory beside `out` and renamed into place at the end, so
a failed export leaves nothing half-written; an export that would hold no drawing is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from game_rules.answers import ANSWERS
from server.learning import datacard, quickdraw
from server.serving.preprocess import image_to_png

IMAGEFOLDER = Path("imagefolder")
METADATA = "metadata.jsonl"
STROKES = "strokes.ndjson"
ARRAYS = "arrays.npz"
VOTES = "votes.jsonl"
CARD = "README.md"
FORMATS = ("imagefolder", "ndjson", "numpy")
NO_LABEL = -1
NOT_A_DIGIT_FOLDER = "not_a_digit"  # consensus: not a digit
UNLABELLED_FOLDER = "unlabelled"  # no consensus yet (pending, disputed)


class ExportError(ValueError):
    """A record that cannot be exported, an empty selection, or an output directory that is
    already there."""


Strokes = quickdraw.Strokes


@dataclass(frozen=True)
class VoteRecord:
    voter: str  # pseudonym, the same function and salt as the drawers'
    answer: int  # 0–9, or 10 for "not a digit"
    counted: bool  # False when the voter was not trusted (yet) or banned later
    timestamp: float  # Unix time


@dataclass(frozen=True)
class ExportRecord:
    attempt_id: int
    image: np.ndarray  # [28, 28] float32 in [0, 1], white ink on black: what the model saw
    strokes: Strokes | None  # None for PNG uploads
    label: int | None  # the consensus digit (the claim, for model_won); None when there is none
    claimed_label: int
    model_label: int  # the model's top class when the drawing was submitted
    consensus_strength: float | None  # the posterior of the consensus answer; None without one
    round: int
    model_version: str
    player: str  # pseudonym: see server/pseudonyms.py
    outcome: str
    timestamp: float  # Unix time of the submission
    model_probs: Sequence[float]  # the model's 10 probabilities
    votes: Sequence[VoteRecord] = ()

    def check(self) -> None:
        if np.shape(self.image) != (28, 28):
            raise ExportError(f"attempt {self.attempt_id}: image must be 28×28")
        if self.label is not None and not 0 <= self.label <= 9:
            raise ExportError(f"attempt {self.attempt_id}: label {self.label} is not a digit")
        if not (0 <= self.claimed_label <= 9 and 0 <= self.model_label <= 9):
            raise ExportError(f"attempt {self.attempt_id}: claimed/model labels must be digits")
        if len(self.model_probs) != 10:
            raise ExportError(f"attempt {self.attempt_id}: model_probs must hold 10 values")
        if any(not 0 <= v.answer < ANSWERS for v in self.votes):
            raise ExportError(f"attempt {self.attempt_id}: a vote answer must be 0–10")

    @property
    def vote_counts(self) -> list[int]:
        """Counted votes per answer, index 10 = not a digit."""
        counts = [0] * ANSWERS
        for vote in self.votes:
            counts[vote.answer] += vote.counted
        return counts

    @property
    def folder(self) -> str:
        """The class folder of the drawing in `imagefolder/round_N/`."""
        if self.label is not None:
            return str(self.label)
        return NOT_A_DIGIT_FOLDER if self.outcome == "rejected_not_digit" else UNLABELLED_FOLDER


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    count: int
    with_strokes: int
    votes: int
    splits: dict[str, int]  # split name → drawings


def split_name(round_number: int) -> str:
    return f"round_{round_number}"


def timestamp_text(unix: float) -> str:
    """One time format in every form: Quick, Draw!'s `2017-03-28 15:28:41.54375 UTC`."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def row(record: ExportRecord) -> dict[str, Any]:
    """The fields of one drawing, the same in metadata.jsonl, strokes.ndjson and arrays.npz."""
    return {
        "attempt_id": record.attempt_id,
        "round": record.round,
        "label": NO_LABEL if record.label is None else record.label,
        "claimed_label": record.claimed_label,
        "model_label": record.model_label,
        "model_probs": [round(float(p), 6) for p in record.model_probs],
        "model_version": record.model_version,
        "outcome": record.outcome,
        "consensus_strength": float(record.consensus_strength or 0.0),
        "player": record.player,
        "timestamp": timestamp_text(record.timestamp),
        "vote_counts": record.vote_counts,
    }


def vote_rows(record: ExportRecord) -> list[dict[str, Any]]:
    """The raw votes on one drawing, with the drawing's own field names for what they share."""
    return [
        {
            "attempt_id": record.attempt_id,
            "round": record.round,
            "player": record.player,
            "claimed_label": record.claimed_label,
            "voter": vote.voter,
            "answer": vote.answer,
            "counted": vote.counted,
            "timestamp": timestamp_text(vote.timestamp),
        }
        for vote in record.votes
    ]


def quickdraw_line(record: ExportRecord) -> dict[str, Any]:
    """One NDJSON line: Quick, Draw!'s fields first, then every field of the drawing."""
    assert record.strokes is not None
    return {
        "key_id": str(record.attempt_id),
        "word": quickdraw.DIGIT_NAMES[record.claimed_label],  # what the drawer was drawing
        "countrycode": "",  # not collected
        "timestamp": timestamp_text(record.timestamp),
        "recognized": record.model_label == record.claimed_label,
        "drawing": quickdraw.simplified(record.strokes),
        "raw_drawing": quickdraw.raw(record.strokes),
        **row(record),
    }


def export_dataset(
    records: Iterable[ExportRecord],
    out: Path,
    *,
    formats: Collection[str] = FORMATS,
    rounds: Collection[int] | None = None,
    outcomes: Collection[str] | None = None,
    total: int | None = None,
    show_progress: bool = False,
) -> ExportSummary:
    """Write every record in `rounds` (all if None) with an outcome in `outcomes` (all if None)
    in `formats`, with the data card and the votes."""
    out = Path(out)
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ExportError(f"unknown export format {sorted(unknown)}: choose from {FORMATS}")
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new directory for the export")
    if total == 0:
        raise ExportError(f"nothing to export: no drawing {_selection(rounds, outcomes)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        selected = (
            r
            for r in records
            if (rounds is None or r.round in rounds) and (outcomes is None or r.outcome in outcomes)
        )
        writer = _Writer(work, set(formats))
        try:
            # disable=None: tqdm draws the bar only when stderr is a terminal, never into a log.
            disable = None if show_progress else True
            for record in tqdm(selected, total=total, disable=disable, unit="drawing"):
                writer.add(record)
        finally:
            writer.close()
        if not writer.seen:
            raise ExportError(f"nothing to export: no drawing {_selection(rounds, outcomes)}")
        summary = writer.finish(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _selection(rounds: Collection[int] | None, outcomes: Collection[str] | None) -> str:
    parts = []
    if rounds is not None:
        parts.append(f"in round {', '.join(map(str, sorted(rounds)))}")
    if outcomes is not None:
        parts.append(f"with outcome {', '.join(sorted(outcomes))}")
    where = " ".join(parts) or "in the game yet"
    return f"{where} (`fool-the-model rounds` lists the rounds and their drawings)"


class _Writer:
    """Streams records into the work directory, one file handle per output."""

    def __init__(self, work: Path, formats: set[str]) -> None:
        self.work, self.formats = work, formats
        self.seen: set[int] = set()
        self.splits: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.with_strokes = self.votes = 0
        self.columns: dict[str, list[Any]] = {name: [] for name in ARRAY_COLUMNS}
        self._files = ExitStack()
        self._metadata: dict[str, TextIO] = {}
        self._votes = self._open(work / VOTES)
        self._strokes = self._open(work / STROKES) if "ndjson" in formats else None

    def _open(self, path: Path) -> TextIO:
        return self._files.enter_context(open(path, "w", encoding="utf-8"))

    def add(self, record: ExportRecord) -> None:
        record.check()
        if record.attempt_id in self.seen:
            raise ExportError(f"attempt {record.attempt_id} appears twice")
        self.seen.add(record.attempt_id)
        split = split_name(record.round)
        self.splits[split] += 1
        self.outcomes[record.outcome] += 1
        fields = row(record)
        if "imagefolder" in self.formats:
            self._write_image(split, record, fields)
        if self._strokes is not None and record.strokes:
            self._strokes.write(json.dumps(quickdraw_line(record)) + "\n")
            self.with_strokes += 1
        if "numpy" in self.formats:
            pixels = np.clip(np.asarray(record.image, dtype=np.float32), 0.0, 1.0)
            self.columns["image"].append(np.rint(pixels * 255).astype(np.uint8))
            for name in ARRAY_COLUMNS.keys() - {"image"}:
                self.columns[name].append(fields[name])
        for vote in vote_rows(record):
            self._votes.write(json.dumps(vote) + "\n")
            self.votes += 1

    def _write_image(self, split: str, record: ExportRecord, fields: dict[str, Any]) -> None:
        folder = self.work / IMAGEFOLDER / split
        if split not in self._metadata:
            folder.mkdir(parents=True)
            self._metadata[split] = self._open(folder / METADATA)
        file_name = f"{record.folder}/{record.attempt_id}.png"
        (folder / record.folder).mkdir(exist_ok=True)
        (folder / file_name).write_bytes(image_to_png(record.image))
        self._metadata[split].write(json.dumps({"file_name": file_name, **fields}) + "\n")

    def close(self) -> None:
        self._files.close()

    def finish(self, out: Path) -> ExportSummary:
        if "numpy" in self.formats:
            arrays: dict[str, Any] = {
                name: np.asarray(values, dtype=ARRAY_COLUMNS[name])
                for name, values in self.columns.items()
            }
            np.savez_compressed(self.work / ARRAYS, **arrays)
        splits = dict(sorted(self.splits.items(), key=lambda item: int(item[0].split("_")[1])))
        card = datacard.render(
            datacard.CardFacts(
                formats=sorted(self.formats, key=FORMATS.index),
                splits=splits,
                outcomes=dict(self.outcomes),
                with_strokes=self.with_strokes,
                votes=self.votes,
            )
        )
        (self.work / CARD).write_text(card, encoding="utf-8")
        return ExportSummary(out, len(self.seen), self.with_strokes, self.votes, splits)


# The NumPy arrays: the row fields under their row names, plus the image. Conventions: images
# uint8 white ink on black (what the model saw, ×255), label -1 when there is none.
ARRAY_COLUMNS: dict[str, Any] = {
    "image": np.uint8,
    "attempt_id": np.int64,
    "round": np.int32,
    "label": np.int16,
    "claimed_label": np.int16,
    "model_label": np.int16,
    "model_probs": np.float32,
    "model_version": np.str_,
    "outcome": np.str_,
    "consensus_strength": np.float32,
    "player": np.str_,
    "timestamp": np.str_,
    "vote_counts": np.int32,
}


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
