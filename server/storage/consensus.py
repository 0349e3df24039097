"""SQL for the consensus phase: tasks, votes, gold, reliability records and score events.

A `ConsensusStore` wraps one `Database` (server/storage/sql.py). The repository hands one bound
to a write transaction to a function (`repo.write_consensus(work)`: writers take turns, every read
in it sees the latest state and every write commits together or not at all; on SQLite the whole
function runs on the database's thread, one trip), or one for reads (`repo.consensus_reads()`,
for read-only queries that never wait for the writer). The rules'
records (`Voter`, `Drawer`, `Pair`, `Claim`, scoring events) go in and out as the dataclasses
`game_rules` defines.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from game_rules.assignment import Candidate, GoldCandidate
from game_rules.challenges import Prompt
from game_rules.consensus import Claim, Outcome
from game_rules.reliability import Drawer, Pair, Status, Voter
from game_rules.rounds import RoundState, settles_claims
from game_rules.scoring import AttemptMade, ChallengeMet, ClaimSettled, Event, GoldAnswered
from server.storage.sql import Database

CANDIDATE_LIMIT = 100  # the neediest pending claims the assigner chooses from
# Rounds whose claims still settle (the rules decide which: `rounds.settles_claims`), as SQL.
_SETTLING_STATES = ", ".join(f"'{state}'" for state in RoundState if settles_claims(state))

_CLAIM_COLUMNS = """
    c.attempt_id, c.round_id, a.player_id, a.label, a.predicted, a.probs, c.state,
    c.consensus, c.label, c.created_at, c.settled_at
"""


@dataclass(frozen=True)
class ClaimRow:
    """A claim with what the rules need about its attempt."""

    attempt_id: int
    round_id: int
    drawer_id: int
    claimed: int
    model_label: int
    model_confidence: float  # the model's probability for its own answer
    state: str
    consensus: Claim | None  # None until the first vote
    label: int | None
    created_at: float
    settled_at: float | None


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    player_id: int
    attempt_id: int | None
    gold_id: int | None
    answered: bool


@dataclass(frozen=True)
class GoldRow:
    gold_id: int
    truth: int
    attempt_id: int | None  # a settled claim, else an MNIST digit
    png: bytes | None
    model_label: int | None = None  # what the served model reads on it (None: not known yet)


def _claim_row(row: Any) -> ClaimRow:
    probs = json.loads(row[5])
    return ClaimRow(
        attempt_id=int(row[0]),
        round_id=int(row[1]),
        drawer_id=int(row[2]),
        claimed=int(row[3]),
        model_label=int(row[4]),
        model_confidence=float(probs[int(row[4])]),
        state=str(row[6]),
        consensus=Claim.from_dict(json.loads(row[7])) if row[7] else None,
        label=None if row[8] is None else int(row[8]),
        created_at=float(row[9]),
        settled_at=None if row[10] is None else float(row[10]),
    )


def event_from_row(seq: int, kind: str, round_id: int, body: str) -> Event:
    data = json.loads(body)
    if kind == "attempt":
        return AttemptMade(seq, round_id, data["player_id"], data["label"], data["model_label"])
    if kind == "gold_answered":
        return GoldAnswered(seq, round_id, data["player_id"], data["truth"], data["answer"])
    if kind == "challenge_met":
        return ChallengeMet(
            seq, round_id, data["player_id"], data["challenge_id"], data["claim_id"], data["points"]
        )
    return ClaimSettled(
        seq=seq,
        round_id=round_id,
        claim_id=data["claim_id"],
        drawer_id=data["drawer_id"],
        outcome=Outcome(data["outcome"]),
        label=data["label"],
        model_confidence=data["model_confidence"],
        votes=tuple((int(v), int(a), bool(c)) for v, a, c in data["votes"]),
        by_admin=bool(data["by_admin"]),
    )


def _event_body(event: Event) -> tuple[str, str]:
    if isinstance(event, AttemptMade):
        fields = {"player_id": event.player_id, "label": event.label}
        return "attempt", json.dumps({**fields, "model_label": event.model_label})
    if isinstance(event, GoldAnswered):
        fields = {"player_id": event.player_id, "truth": event.truth, "answer": event.answer}
        return "gold_answered", json.dumps(fields)
    if isinstance(event, ChallengeMet):
        return "challenge_met", json.dumps(
            {
                "player_id": event.player_id,
                "challenge_id": event.challenge_id,
                "claim_id": event.claim_id,
                "points": event.points,
            }
        )
    return "claim_settled", json.dumps(
        {
            "claim_id": event.claim_id,
            "drawer_id": event.drawer_id,
            "outcome": str(event.outcome),
            "label": event.label,
            "model_confidence": event.model_confidence,
            "votes": [list(v) for v in event.votes],
            "by_admin": event.by_admin,
        }
    )


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)


class ConsensusStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _one(self, sql: str, params: Iterable[object] = ()) -> Any:
        return await self.db.fetchone(sql, params)

    async def _all(self, sql: str, params: Iterable[object] = ()) -> list[Any]:
        return await self.db.fetchall(sql, params)

    # Players and their records

    async def player_status(self, player_id: int) -> Status | None:
        row = await self._one("SELECT status FROM players WHERE id = ?", (player_id,))
        return Status(row[0]) if row else None

    async def set_player_status(self, player_id: int, status: Status) -> None:
        await self.db.execute(
            "UPDATE players SET status = ? WHERE id = ?", (str(status), player_id)
        )

    async def voter(self, player_id: int) -> Voter:
        row = await self._one(
            "SELECT p.status, v.record FROM players p LEFT JOIN voters v ON v.player_id = p.id "
            "WHERE p.id = ?",
            (player_id,),
        )
        if row is None:
            raise LookupError(f"There is no player {player_id}.")
        voter = Voter.from_dict(json.loads(row[1])) if row[1] else Voter(player_id)
        # The status lives on the player (drawers have one too); the record keeps the counts.
        return replace(voter, status=Status(row[0]))

    async def save_voter(self, voter: Voter) -> None:
        await self.db.execute(
            "INSERT INTO voters (player_id, record) VALUES (?, ?) "
            "ON CONFLICT (player_id) DO UPDATE SET record = excluded.record",
            (voter.player_id, json.dumps(voter.to_dict())),
        )

    async def drawer(self, player_id: int) -> Drawer:
        row = await self._one(
            "SELECT settled, verified, votes, confirmed, refuted FROM drawers WHERE player_id = ?",
            (player_id,),
        )
        return Drawer(player_id, *(int(n) for n in row)) if row else Drawer(player_id)

    async def save_drawer(self, d: Drawer) -> None:
        await self.db.execute(
            "INSERT INTO drawers (player_id, settled, verified, votes, confirmed, refuted)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (player_id) DO UPDATE SET"
            " settled = excluded.settled, verified = excluded.verified,"
            " votes = excluded.votes, confirmed = excluded.confirmed, refuted = excluded.refuted",
            (d.player_id, d.settled, d.verified, d.votes, d.confirmed, d.refuted),
        )

    async def pair(self, drawer_id: int, voter_id: int) -> Pair:
        row = await self._one(
            "SELECT votes, agreed FROM pairs WHERE drawer_id = ? AND voter_id = ?",
            (drawer_id, voter_id),
        )
        return (
            Pair(drawer_id, voter_id, int(row[0]), int(row[1]))
            if row
            else Pair(drawer_id, voter_id)
        )

    async def save_pair(self, pair: Pair) -> None:
        await self.db.execute(
            "INSERT INTO pairs (drawer_id, voter_id, votes, agreed) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (drawer_id, voter_id) DO UPDATE SET votes = excluded.votes,"
            " agreed = excluded.agreed",
            (pair.drawer_id, pair.voter_id, pair.votes, pair.agreed),
        )

    # Claims

    async def claim(self, attempt_id: int) -> ClaimRow | None:
        row = await self._one(
            f"SELECT {_CLAIM_COLUMNS} FROM claims c JOIN attempts a ON a.id = c.attempt_id "
            "WHERE c.attempt_id = ?",
            (attempt_id,),
        )
        return _claim_row(row) if row else None

    async def claims_in_state(self, state: str) -> list[ClaimRow]:
        rows = await self._all(
            f"SELECT {_CLAIM_COLUMNS} FROM claims c JOIN attempts a ON a.id = c.attempt_id "
            "WHERE c.state = ? ORDER BY c.created_at, c.attempt_id",
            (state,),
        )
        return [_claim_row(r) for r in rows]

    async def decided_claims(self, player_id: int, limit: int) -> list[ClaimRow]:
        """The player's latest settled or disputed claims, newest first."""
        rows = await self._all(
            f"SELECT {_CLAIM_COLUMNS} FROM claims c JOIN attempts a ON a.id = c.attempt_id "
            "WHERE a.player_id = ? AND c.state != 'pending' "
            "ORDER BY coalesce(c.settled_at, c.created_at) DESC, c.attempt_id DESC LIMIT ?",
            (player_id, limit),
        )
        return [_claim_row(r) for r in rows]

    async def settled_claims(self) -> list[ClaimRow]:
        rows = await self._all(
            f"SELECT {_CLAIM_COLUMNS} FROM claims c JOIN attempts a ON a.id = c.attempt_id "
            "WHERE c.state NOT IN ('pending', 'disputed') ORDER BY c.attempt_id"
        )
        return [_claim_row(r) for r in rows]

    async def verified_fools(self, round_number: int) -> list[tuple[int, str, int, int, bytes]]:
        """(attempt id, player name, label, predicted, 28×28 image) of a round's verified fools."""
        rows = await self._all(
            "SELECT a.id, p.name, a.label, a.predicted, a.image FROM claims c"
            " JOIN attempts a ON a.id = c.attempt_id JOIN players p ON p.id = a.player_id"
            " JOIN rounds r ON r.id = c.round_id"
            " WHERE r.number = ? AND c.state = 'verified' ORDER BY c.settled_at, a.id",
            (round_number,),
        )
        return [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), bytes(r[4])) for r in rows]

    async def drawing(self, attempt_id: int) -> dict[str, Any]:
        """The drawing as the drawer made it: `{"strokes": ...}` or `{"png": base64}`."""
        row = await self._one("SELECT strokes, png FROM attempts WHERE id = ?", (attempt_id,))
        if row is None:
            raise LookupError(f"There is no attempt {attempt_id}.")
        if row[0] is not None:
            return {"strokes": json.loads(row[0])}
        return {"png": base64.b64encode(bytes(row[1])).decode()}

    async def find_players(self, key: str, limit: int = 100) -> list[tuple[int, str, str]]:
        """(id, name, status) of players whose name key (game_rules/names.py `name_key`)
        contains `key`, the name key of what was searched for."""
        pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._all(
            "SELECT id, name, status FROM players WHERE name_key LIKE ? ESCAPE '\\'"
            " ORDER BY id LIMIT ?",
            (pattern, limit),
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def pending_claims_touching(self, player_id: int) -> tuple[list[int], list[int]]:
        """Pending claims this player voted on, and pending claims they drew."""
        voted = await self._all(
            "SELECT c.attempt_id FROM claims c JOIN votes v ON v.attempt_id = c.attempt_id "
            "WHERE c.state = 'pending' AND v.voter_id = ? ORDER BY c.attempt_id",
            (player_id,),
        )
        drawn = await self._all(
            "SELECT c.attempt_id FROM claims c JOIN attempts a ON a.id = c.attempt_id "
            "WHERE c.state = 'pending' AND a.player_id = ? ORDER BY c.attempt_id",
            (player_id,),
        )
        return [int(r[0]) for r in voted], [int(r[0]) for r in drawn]

    async def save_claim(
        self, claim: Claim, by_admin: bool = False, needed: int | None = None
    ) -> None:
        """Store `claim`; `needed` is `leases.votes_to_settle` for a pending claim."""
        state = "pending" if claim.outcome is None else str(claim.outcome)
        settled_at = time.time() if claim.settled else None
        await self.db.execute(
            "UPDATE claims SET consensus = ?, state = ?, label = ?, votes = ?, by_admin = ?,"
            " settled_at = ?, needed = ? WHERE attempt_id = ?",
            (
                json.dumps(claim.to_dict()),
                state,
                claim.label,
                len(claim.votes),
                int(by_admin),
                settled_at,
                needed,
                claim.claim_id,
            ),
        )

    async def claim_candidates(self, player_id: int, leased_since: float) -> list[Candidate]:
        """The neediest pending claims this player may vote on (not drawn, not voted by them),
        in rounds that still settle claims, with their leases: open tasks issued after
        `leased_since`."""
        rows = await self._all(
            "SELECT c.attempt_id, a.player_id, c.votes, c.created_at, c.needed,"
            " (SELECT COUNT(*) FROM tasks t WHERE t.attempt_id = c.attempt_id"
            "  AND t.answered_at IS NULL AND t.issued_at > ?)"
            " FROM claims c"
            " JOIN attempts a ON a.id = c.attempt_id JOIN rounds r ON r.id = c.round_id"
            f" WHERE c.state = 'pending' AND r.state IN ({_SETTLING_STATES}) AND a.player_id != ?"
            " AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.attempt_id = c.attempt_id"
            "                 AND v.voter_id = ?)"
            " ORDER BY c.votes, c.created_at, c.attempt_id LIMIT ?",
            (leased_since, player_id, player_id, CANDIDATE_LIMIT),
        )
        return [
            Candidate(
                int(r[0]),
                int(r[1]),
                int(r[2]),
                int(r[3] * 1e6),
                leases=int(r[5]),
                needed=None if r[4] is None else int(r[4]),
            )
            for r in rows
        ]

    async def leases(self, attempt_id: int, leased_since: float) -> tuple[int | None, int]:
        """A pending claim's `needed` and its leases (open tasks issued after `leased_since`)."""
        row = await self._one(
            "SELECT c.needed, (SELECT COUNT(*) FROM tasks t WHERE t.attempt_id = c.attempt_id"
            "  AND t.answered_at IS NULL AND t.issued_at > ?)"
            " FROM claims c WHERE c.attempt_id = ?",
            (leased_since, attempt_id),
        )
        assert row is not None
        return (None if row[0] is None else int(row[0])), int(row[1])

    # Gold

    async def gold_candidates(
        self, player_id: int
    ) -> tuple[list[GoldCandidate], list[GoldCandidate]]:
        """MNIST digits and settled claims this player may get as gold: not answered yet, and
        (for claims) neither drawn nor voted on by them."""
        rows = await self._all(
            "SELECT g.id, a.player_id FROM gold g LEFT JOIN attempts a ON a.id = g.attempt_id"
            " WHERE NOT EXISTS (SELECT 1 FROM gold_answers x WHERE x.gold_id = g.id"
            "                   AND x.player_id = ?)"
            " AND (g.attempt_id IS NULL OR (a.player_id != ? AND NOT EXISTS"
            "      (SELECT 1 FROM votes v WHERE v.attempt_id = g.attempt_id AND v.voter_id = ?)))",
            (player_id, player_id, player_id),
        )
        digits = [GoldCandidate(int(r[0])) for r in rows if r[1] is None]
        claims = [GoldCandidate(int(r[0]), int(r[1])) for r in rows if r[1] is not None]
        return digits, claims

    async def gold(self, gold_id: int) -> GoldRow | None:
        row = await self._one(
            "SELECT id, truth, attempt_id, png, model_label FROM gold WHERE id = ?", (gold_id,)
        )
        if row is None:
            return None
        return GoldRow(
            int(row[0]),
            int(row[1]),
            None if row[2] is None else int(row[2]),
            row[3],
            None if row[4] is None else int(row[4]),
        )

    async def gold_digits(self) -> int:
        row = await self._one("SELECT count(*) FROM gold WHERE mnist_index IS NOT NULL")
        return int(row[0])

    async def add_mnist_gold(self, digits: Iterable[tuple[int, int, bytes]]) -> None:
        """(MNIST test index, label, 28×28 PNG) rows; ones already there are kept."""
        now = time.time()
        await self.db.executemany(
            "INSERT INTO gold (mnist_index, truth, png, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(index, label, png, now) for index, label, png in digits],
        )

    async def claim_gold_images(self, limit: int = 2000) -> list[tuple[int, bytes]]:
        """(gold id, the 28×28 float32 image the model saw) of settled claims kept as gold,
        newest first."""
        rows = await self._all(
            "SELECT g.id, a.image FROM gold g JOIN attempts a ON a.id = g.attempt_id"
            " ORDER BY g.id DESC LIMIT ?",
            (limit,),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def set_claim_gold_model_labels(self, labels: dict[int, int]) -> None:
        """What the served model reads on settled claims kept as gold: {gold id: label}."""
        await self.db.executemany(
            "UPDATE gold SET model_label = ? WHERE id = ?",
            [(label, gold_id) for gold_id, label in labels.items()],
        )

    async def set_mnist_model_labels(self, labels: dict[int, int]) -> None:
        """What the served model reads on MNIST gold digits: {MNIST test index: label}."""
        await self.db.executemany(
            "UPDATE gold SET model_label = ? WHERE mnist_index = ?",
            [(label, index) for index, label in labels.items()],
        )

    async def add_claim_gold(self, attempt_id: int, truth: int, model_label: int) -> None:
        """A settled claim as gold; `model_label` is what the model read on it (a verified
        fooling is hard gold: the model got it wrong)."""
        await self.db.execute(
            "INSERT INTO gold (attempt_id, truth, model_label, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (attempt_id, truth, model_label, time.time()),
        )

    async def add_gold_answer(
        self, gold_id: int, player_id: int, task_id: str, answer: int
    ) -> None:
        await self.db.execute(
            "INSERT INTO gold_answers (gold_id, player_id, task_id, answer, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (gold_id, player_id, task_id, answer, time.time()),
        )

    # Tasks and votes

    async def add_task(
        self, task_id: str, player_id: int, attempt_id: int | None, gold_id: int | None
    ) -> None:
        await self.db.execute(
            "INSERT INTO tasks (id, player_id, attempt_id, gold_id, issued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (task_id, player_id, attempt_id, gold_id, time.time()),
        )

    async def task(self, task_id: str) -> TaskRow | None:
        row = await self._one(
            "SELECT id, player_id, attempt_id, gold_id, answered_at FROM tasks WHERE id = ?",
            (task_id,),
        )
        return _task_row(row) if row else None

    async def open_task(self, player_id: int) -> TaskRow | None:
        """The player's unanswered task that can still be answered (its claim still pending)."""
        row = await self._one(
            "SELECT t.id, t.player_id, t.attempt_id, t.gold_id, t.answered_at FROM tasks t"
            " LEFT JOIN claims c ON c.attempt_id = t.attempt_id"
            " WHERE t.player_id = ? AND t.answered_at IS NULL"
            " AND (t.gold_id IS NOT NULL OR c.state = 'pending')"
            " ORDER BY t.issued_at DESC LIMIT 1",
            (player_id,),
        )
        return _task_row(row) if row else None

    async def answer_task(self, task_id: str) -> None:
        await self.db.execute(
            "UPDATE tasks SET answered_at = ? WHERE id = ?", (time.time(), task_id)
        )

    async def add_vote(
        self, attempt_id: int, voter_id: int, task_id: str, answer: int, counted: bool
    ) -> None:
        await self.db.execute(
            "INSERT INTO votes (attempt_id, voter_id, task_id, answer, counted, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (attempt_id, voter_id, task_id, answer, int(counted), time.time()),
        )

    async def image(self, attempt_id: int) -> bytes:
        row = await self._one("SELECT image FROM attempts WHERE id = ?", (attempt_id,))
        if row is None:
            raise LookupError(f"There is no attempt {attempt_id}.")
        return bytes(row[0])

    # Challenges (game_rules/challenges.py)

    async def challenges(self, round_id: int) -> list[Prompt]:
        rows = await self._all(
            "SELECT id, round_id, label, model_label, bonus FROM challenges"
            " WHERE round_id = ? ORDER BY id",
            (round_id,),
        )
        return [Prompt(int(r[0]), int(r[1]), int(r[2]), _maybe_int(r[3]), int(r[4])) for r in rows]

    async def add_challenge(
        self, round_id: int, label: int, model_label: int | None, bonus: int
    ) -> Prompt:
        row = await self.db.fetchone(
            "INSERT INTO challenges (round_id, label, model_label, bonus, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (round_id, label, model_label, bonus, time.time()),
        )
        assert row is not None
        return Prompt(int(row[0]), round_id, label, model_label, bonus)

    async def challenges_met(self, player_id: int, round_id: int) -> set[int]:
        rows = await self._all(
            "SELECT m.challenge_id FROM challenges_met m JOIN challenges c ON c.id = m.challenge_id"
            " WHERE m.player_id = ? AND c.round_id = ?",
            (player_id, round_id),
        )
        return {int(r[0]) for r in rows}

    async def meet_challenge(self, challenge_id: int, player_id: int, attempt_id: int) -> None:
        await self.db.execute(
            "INSERT INTO challenges_met (challenge_id, player_id, attempt_id, created_at)"
            " VALUES (?, ?, ?, ?)",
            (challenge_id, player_id, attempt_id, time.time()),
        )

    # Score events

    async def append_event(self, event: Event) -> int:
        """Append `event` (its `seq` is ignored: the database assigns it); return the seq."""
        kind, body = _event_body(event)
        row = await self.db.fetchone(
            "INSERT INTO score_events (kind, round_id, body, created_at) VALUES (?, ?, ?, ?)"
            " RETURNING seq",
            (kind, event.round_id, body, time.time()),
        )
        assert row is not None
        return int(row[0])

    async def events(self, after: int = 0) -> list[Event]:
        rows = await self._all(
            "SELECT seq, kind, round_id, body FROM score_events WHERE seq > ? ORDER BY seq",
            (after,),
        )
        return [event_from_row(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]

    async def names(self, player_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(player_ids))
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = await self._all(f"SELECT id, name FROM players WHERE id IN ({marks})", chunk)
            found.update({int(r[0]): str(r[1]) for r in rows})
        return found


def _task_row(row: Any) -> TaskRow:
    return TaskRow(
        task_id=str(row[0]),
        player_id=int(row[1]),
        attempt_id=None if row[2] is None else int(row[2]),
        gold_id=None if row[3] is None else int(row[3]),
        answered=row[4] is not None,
    )
