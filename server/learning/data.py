"""What the learning loop reads from the game database: the players' drawings, per-round
counts, and the records of a dataset export.

A drawing is *verified* when its claim settled as `verified` or `relabelled` with a digit as the
consensus label; its weight in training is the consensus strength (the posterior of that label).
A drawing the model *read right* (outcome `model_won`) is a human drawing with its drawer's
label: training replays them so the model keeps reading ordinary drawings, and the gate checks
it still does. Which drawings are held out is `game_rules.heldout.held_out` on their content,
with the percentage from the rules (`retrain.heldout_fraction`), for each kind apart: the
trainer never sees them, the gate and the metrics judge with them. Drawings come in content
order, not arrival order, so the same drawings make the same training job.

Synchronous (server/storage/sync.py): the command line and the trainer call it directly, the
server in a thread.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from game_rules.consensus import ATTEMPT_OUTCOMES
from game_rules.heldout import content_key, held_out
from server.config import DataLayout
from server.learning.export import (
    FORMATS,
    ExportRecord,
    ExportSummary,
    VoteRecord,
    export_dataset,
)
from server.learning.jobs.examples import ExampleSet
from server.pseudonyms import anonymous_player_id, load_or_create_salt
from server.storage.sync import Connection, connect

# Claim states whose consensus label is a digit the drawing shows.
VERIFIED_STATES = ("verified", "relabelled")
OUTCOMES = tuple(str(outcome) for outcome in ATTEMPT_OUTCOMES)  # for export filters
_VERIFIED = f"c.state IN {VERIFIED_STATES!r} AND c.label BETWEEN 0 AND 9"


def strength(label: int, by_admin: int, consensus: str | None) -> float:
    """The posterior of the consensus label; a claim an admin decided counts as certain."""
    if by_admin or not consensus:
        return 1.0
    posterior = json.loads(consensus).get("posterior")
    return float(posterior[label]) if posterior and label < len(posterior) else 1.0


def verified_count(db: Connection) -> int:
    row = db.execute(f"SELECT count(*) FROM claims c WHERE {_VERIFIED}").fetchone()
    return int(row[0])


@dataclass(frozen=True)
class PlayerDrawings:
    """The players' drawings for a training job: foolings first, then drawings read right."""

    train: ExampleSet
    heldout: ExampleSet
    total: int  # verified drawings in the database when read

    def counts(self) -> dict[str, int]:
        """What a job trains on and judges with, for the job's row and the admin console."""
        return {
            "train": len(self.train.foolings()),
            "heldout": len(self.heldout.foolings()),
            "read_right_train": len(self.train.read_right()),
            "read_right_heldout": len(self.heldout.read_right()),
        }


def player_drawings(database_url: str, percent: int) -> PlayerDrawings:
    """Every verified fooling and every drawing the model read right, each kind split into
    training and held-out drawings."""
    with connect(database_url) as db:
        verified = db.execute(
            "SELECT r.number, a.image, c.label, c.by_admin, c.consensus"
            " FROM claims c JOIN attempts a ON a.id = c.attempt_id"
            f" JOIN rounds r ON r.id = a.round_id WHERE {_VERIFIED}"
        ).fetchall()
        read_right = db.execute(
            "SELECT r.number, a.image, a.label FROM attempts a"
            " JOIN rounds r ON r.id = a.round_id"
            " WHERE a.outcome = 'model_won' AND a.label BETWEEN 0 AND 9"
        ).fetchall()
    foolings = _examples(
        [
            (n, image, int(label), strength(int(label), int(by_admin), consensus), True)
            for n, image, label, by_admin, consensus in verified
        ]
    )
    ordinary = _examples([(n, image, int(label), 1.0, False) for n, image, label in read_right])
    train, heldout = _split(foolings, percent)
    train_ordinary, heldout_ordinary = _split(ordinary, percent)
    return PlayerDrawings(train + train_ordinary, heldout + heldout_ordinary, len(verified))


def _examples(rows: list[tuple[Any, ...]]) -> tuple[ExampleSet, list[str]]:
    """(round, image bytes, label, weight, fooled) rows → a set in content order, and its keys."""
    images = [np.frombuffer(r[1], dtype="<f4").reshape(28, 28) for r in rows]
    keys = [content_key(image) for image in images]
    order = sorted(range(len(rows)), key=lambda i: (keys[i], rows[i][2], rows[i][3], rows[i][0]))
    pixels = np.stack([images[i] for i in order]) if rows else np.zeros((0, 28, 28), np.float32)
    examples = ExampleSet.of(
        np.clip(pixels, 0.0, 1.0).astype(np.float32),
        [rows[i][2] for i in order],
        weights=[rows[i][3] for i in order],
        rounds=[int(rows[i][0]) for i in order],
        fooled=[rows[i][4] for i in order],
    )
    return examples, [keys[i] for i in order]


def _split(examples: tuple[ExampleSet, list[str]], percent: int) -> tuple[ExampleSet, ExampleSet]:
    drawings, keys = examples
    held = np.array(held_out(keys, percent), dtype=bool)
    return drawings.where(~held), drawings.where(held)


@dataclass(frozen=True)
class RoundStats:
    number: int
    state: str
    model_version: str
    attempts: int
    claims: int
    verified: int  # verified fools: claims the crowd confirmed

    @property
    def mer(self) -> float | None:
        """Model error rate as the players claim it: claims / attempts."""
        return self.claims / self.attempts if self.attempts else None

    @property
    def vmer(self) -> float | None:
        """Verified model error rate (Dynabench): verified fools / attempts."""
        return self.verified / self.attempts if self.attempts else None

    def public(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "model_version": self.model_version,
            "attempts": self.attempts,
            "claims": self.claims,
            "verified": self.verified,
            "mer": self.mer,
            "vmer": self.vmer,
        }


def round_stats(database_url: str) -> list[RoundStats]:
    """Every round, oldest first, with its counts."""
    with connect(database_url) as db:
        rows = db.execute(
            "SELECT r.number, r.state, r.model_version,"
            " (SELECT count(*) FROM attempts a WHERE a.round_id = r.id),"
            " (SELECT count(*) FROM claims c WHERE c.round_id = r.id),"
            " (SELECT count(*) FROM claims c WHERE c.round_id = r.id AND c.state = 'verified')"
            " FROM rounds r ORDER BY r.number"
        ).fetchall()
    return [RoundStats(int(n), s, v, int(a), int(c), int(f)) for n, s, v, a, c, f in rows]


_OUTCOME = (
    "CASE WHEN a.outcome = 'model_won' THEN 'model_won' ELSE coalesce(c.state, 'pending') END"
)
_ATTEMPTS = """
    FROM attempts a
    JOIN rounds r ON r.id = a.round_id
    LEFT JOIN claims c ON c.attempt_id = a.id
"""
_RECORD_QUERY = f"""
    SELECT a.id, a.image, a.strokes, a.label, a.predicted, a.probs, a.model_version, a.player_id,
           a.created_at, r.number, {_OUTCOME}, c.label, c.by_admin, c.consensus
    {_ATTEMPTS}
"""
# What an export holds unless asked otherwise: every settled attempt, whatever the outcome.
SETTLED_OUTCOMES = tuple(o for o in OUTCOMES if o not in ("pending", "disputed"))
# Outcomes whose consensus is a digit: the drawing's label.
_DIGIT_CONSENSUS = ("verified", "relabelled", "rejected_model_right")


def _filters(rounds: Collection[int] | None, outcomes: Collection[str]) -> tuple[str, list[object]]:
    unknown = set(outcomes) - set(OUTCOMES)
    if unknown or not outcomes:
        raise ValueError(f"unknown outcome {sorted(unknown)}: choose from {', '.join(OUTCOMES)}")
    clauses = [f"{_OUTCOME} IN ({', '.join('?' * len(outcomes))})"]
    params: list[object] = list(outcomes)
    if rounds is not None:
        clauses.append(f"r.number IN ({', '.join('?' * len(rounds))})")
        params.extend(rounds)
    return " WHERE " + " AND ".join(clauses), params


def count_records(
    database_url: str,
    rounds: Collection[int] | None = None,
    outcomes: Collection[str] = SETTLED_OUTCOMES,
) -> int:
    where, params = _filters(rounds, outcomes)
    with connect(database_url) as db:
        return int(db.execute(f"SELECT count(*) {_ATTEMPTS}{where}", params).fetchone()[0])


def export_records(
    database_url: str,
    salt: bytes,
    rounds: Collection[int] | None = None,
    outcomes: Collection[str] = SETTLED_OUTCOMES,
) -> Iterator[ExportRecord]:
    """The attempts as export records with their raw votes, oldest first, streamed from the
    database. Drawers and voters get their pseudonyms from the one `salt`."""
    where, params = _filters(rounds, outcomes)

    def pseudonym(player_id: int) -> str:
        return anonymous_player_id(int(player_id), salt)

    with connect(database_url) as db:
        votes: dict[int, list[VoteRecord]] = {}
        for attempt_id, voter, answer, counted, created in db.execute(
            "SELECT attempt_id, voter_id, answer, counted, created_at FROM votes ORDER BY id"
        ).fetchall():
            votes.setdefault(int(attempt_id), []).append(
                VoteRecord(pseudonym(voter), int(answer), bool(counted), float(created))
            )
        for row in db.execute(f"{_RECORD_QUERY}{where} ORDER BY a.id", params):
            attempt_id, image, strokes, claimed, predicted, probs, version, player = row[:8]
            created, number, outcome, consensus_label, by_admin, consensus = row[8:]
            label, consensus_strength = _consensus(
                str(outcome), int(claimed), consensus_label, int(by_admin or 0), consensus
            )
            yield ExportRecord(
                attempt_id=int(attempt_id),
                image=np.frombuffer(image, dtype="<f4").reshape(28, 28),
                strokes=json.loads(strokes) if strokes else None,
                label=label,
                claimed_label=int(claimed),
                model_label=int(predicted),
                model_probs=[float(p) for p in json.loads(probs)],
                consensus_strength=consensus_strength,
                round=int(number),
                model_version=str(version),
                player=pseudonym(player),
                outcome=str(outcome),
                timestamp=float(created),
                votes=tuple(votes.get(int(attempt_id), ())),
            )


def _consensus(
    outcome: str, claimed: int, answer: int | None, by_admin: int, consensus: str | None
) -> tuple[int | None, float | None]:
    """The drawing's label and consensus strength: the crowd's digit whatever the outcome, the
    claim the model confirmed for model_won (nobody votes on those), none otherwise."""
    if outcome == "model_won":
        return claimed, None
    if answer is None or outcome not in (*_DIGIT_CONSENSUS, "rejected_not_digit"):
        return None, None
    certainty = strength(int(answer), by_admin, consensus)
    return (int(answer), certainty) if outcome in _DIGIT_CONSENSUS else (None, certainty)


# The formats the CLI and the admin route accept.
EXPORT_FORMATS = FORMATS


def export_to(
    layout: DataLayout,
    out: Path,
    formats: Collection[str] = FORMATS,
    rounds: Collection[int] | None = None,
    outcomes: Collection[str] | None = None,
    show_progress: bool = False,
) -> ExportSummary:
    """Export the attempts in `rounds` (None: all) with `outcomes` (None: every settled one) to
    the new directory `out`, in `formats` (of export.FORMATS), with the data card and votes."""
    chosen = SETTLED_OUTCOMES if outcomes is None else tuple(outcomes)
    salt = load_or_create_salt(layout.pseudonym_salt)
    return export_dataset(
        export_records(layout.database_url, salt, rounds, chosen),
        out,
        formats=formats,
        total=count_records(layout.database_url, rounds, chosen),
        show_progress=show_progress,
        rounds=rounds,
        outcomes=outcomes,  # for the message when nothing matches (the query filtered already)
    )
