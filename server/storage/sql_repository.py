"""The repository written once over `Database` (server/storage/sql.py); the subclasses for
SQLite and PostgreSQL only connect, migrate and say how a write transaction begins.

Writers take turns: each write is one transaction, and only one runs at a time across every
process sharing the database (SQLite's write lock; a PostgreSQL advisory lock). That keeps the
consensus rules' read-then-write steps simple, and makes `score_events.seq` order commit order.
Reads never wait for the writer.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from game_rules.reliability import Status
from game_rules.rounds import RoundState
from server.storage.base import (
    REPLAY_SECONDS,
    Conflict,
    GameCounts,
    NameTaken,
    NewAttempt,
    Player,
    Repository,
    Round,
    RoundChanged,
    RoundNotOpen,
    StoredSubmission,
    Submitter,
)
from server.storage.consensus import ConsensusStore
from server.storage.sql import Database, Row, T

MAX_GROUP = 500  # submissions per group commit (11 parameters each, well under either limit)

_Request = tuple[int, str, str]  # a submission request: player id, request id, fingerprint

_ROUND_COLUMNS = """
    r.id, r.number, r.state, r.model_version,
    (SELECT count(*) FROM claims c WHERE c.round_id = r.id AND c.state = 'verified'),
    (SELECT count(*) FROM attempts a WHERE a.round_id = r.id)
"""


def _round(row: Row) -> Round:
    id_, number, state, model_version, fools, attempts = row
    return Round(
        id=int(id_),
        number=int(number),
        state=RoundState(state),
        model_version=str(model_version),
        fools=int(fools),
        attempts=int(attempts),
    )


class SqlRepository(Repository):
    def __init__(self, reads: Database) -> None:
        self._reads = reads
        # Group commit: submissions waiting for the next transaction, and the task writing them.
        self._waiting: list[tuple[NewAttempt, asyncio.Future[int]]] = []
        self._committer: asyncio.Task[None] | None = None

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Database]:
        """One write transaction, this process's and every other's writes waiting their turn."""

    async def _write(self, work: Callable[[Database], Awaitable[T]]) -> T:
        """`work`'s statements as one write transaction. `work` awaits nothing but its
        statements, so SQLite can run it whole in one trip to its connection's thread."""
        async with self._transaction() as db:
            return await work(db)

    async def _finish_commits(self) -> None:
        if self._committer is not None:
            await self._committer

    async def ping(self) -> None:
        await self._reads.fetchone("SELECT 1")

    async def counts(self) -> GameCounts:
        claims = await self._reads.fetchall("SELECT state, count(*) FROM claims GROUP BY state")
        votes = await self._reads.fetchone("SELECT count(*) FROM votes")
        jobs = await self._reads.fetchall(
            "SELECT state, count(*) FROM training_jobs GROUP BY state"
        )
        running = await self._reads.fetchone(
            "SELECT progress FROM training_jobs WHERE state = 'running'"
        )
        return GameCounts(
            claims={str(state): int(n) for state, n in claims},
            votes=int(votes[0]) if votes else 0,
            jobs={str(state): int(n) for state, n in jobs},
            progress=str(running[0]) if running and running[0] else None,
        )

    async def write_consensus(self, work: Callable[[ConsensusStore], Awaitable[T]]) -> T:
        return await self._write(lambda db: work(ConsensusStore(db)))

    def consensus_reads(self) -> ConsensusStore:
        return ConsensusStore(self._reads)

    async def create_player(self, name: str, name_key: str, token_hash: str) -> Player:
        try:
            async with self._transaction() as db:
                row = await db.fetchone(
                    "INSERT INTO players (name, name_key, token_hash, created_at)"
                    " VALUES (?, ?, ?, ?) RETURNING id",
                    (name, name_key, token_hash, time.time()),
                )
        except Conflict as error:
            if "name_key" in str(error):
                raise NameTaken(name) from None
            raise
        assert row is not None
        return Player(id=int(row[0]), name=name)

    async def rekey_players(self, name_key: Callable[[str], str]) -> int:
        rows = await self._reads.fetchall("SELECT id, name, name_key FROM players ORDER BY id")
        taken: set[str] = set()
        changes: list[tuple[str, int]] = []
        for player_id, name, old_key in rows:
            key = name_key(str(name))
            if key in taken:
                key = f"{key}#{player_id}"  # "#" is not allowed in names: no new name has it
            taken.add(key)
            if key != old_key:
                changes.append((key, int(player_id)))
        if changes:
            async with self._transaction() as db:
                # In two steps: a key may move to a row whose old key is still in its way.
                await db.executemany(
                    "UPDATE players SET name_key = ? WHERE id = ?",
                    [(f"#rekey{player_id}", player_id) for _, player_id in changes],
                )
                await db.executemany("UPDATE players SET name_key = ? WHERE id = ?", changes)
        return len(changes)

    async def player_by_token_hash(self, token_hash: str) -> Player | None:
        row = await self._reads.fetchone(
            "SELECT id, name FROM players WHERE token_hash = ?", (token_hash,)
        )
        return Player(id=int(row[0]), name=str(row[1])) if row else None

    async def rounds(self) -> list[Round]:
        rows = await self._reads.fetchall(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r ORDER BY r.number DESC"
        )
        return [_round(row) for row in rows]

    async def round(self, round_id: int) -> Round | None:
        row = await self._reads.fetchone(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.id = ?", (round_id,)
        )
        return _round(row) if row else None

    async def current_round(self) -> Round | None:
        row = await self._reads.fetchone(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r"
            " ORDER BY CASE WHEN r.state = 'open' THEN 0 ELSE 1 END, r.number DESC LIMIT 1"
        )
        return _round(row) if row else None

    async def open_first_round(self, model_version: str) -> Round | None:
        now = time.time()
        async with self._transaction() as db:
            row = await db.fetchone(
                "INSERT INTO rounds (number, state, model_version, created_at, opened_at)"
                " SELECT 1, 'open', ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM rounds)"
                " RETURNING id",
                (model_version, now, now),
            )
        return await self.round(int(row[0])) if row else None

    async def create_round(self, model_version: str, open_now: bool = False) -> Round:
        now = time.time()
        state = RoundState.OPEN if open_now else RoundState.SCHEDULED
        async with self._transaction() as db:
            if open_now:
                await db.execute("UPDATE rounds SET state = 'closing' WHERE state = 'open'")
            row = await db.fetchone(
                "INSERT INTO rounds (number, state, model_version, created_at, opened_at) "
                "VALUES ((SELECT coalesce(max(number), 0) + 1 FROM rounds), ?, ?, ?, ?) "
                "RETURNING id",
                (str(state), model_version, now, now if open_now else None),
            )
        assert row is not None
        created = await self.round(int(row[0]))
        assert created is not None
        return created

    async def move_round(self, round_id: int, expected: RoundState, target: RoundState) -> Round:
        now = time.time()
        opened_at = now if target is RoundState.OPEN else None
        closed_at = now if target is RoundState.CLOSED else None
        async with self._transaction() as db:
            if target is RoundState.OPEN:
                await db.execute(
                    "UPDATE rounds SET state = 'closing' WHERE state = 'open' AND id != ?",
                    (round_id,),
                )
            changed = await db.execute(
                "UPDATE rounds SET state = ?, opened_at = coalesce(?, opened_at),"
                " closed_at = coalesce(?, closed_at) WHERE id = ? AND state = ?",
                (str(target), opened_at, closed_at, round_id, str(expected)),
            )
            if changed != 1:
                raise RoundChanged(f"round {round_id} is no longer {expected}")
        moved = await self.round(round_id)
        assert moved is not None
        return moved

    async def add_attempt(self, attempt: NewAttempt) -> int:
        """Wait for the next group commit to store `attempt` (see `_commit_waiting`)."""
        stored: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((attempt, stored))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        return await stored

    async def _commit_waiting(self) -> None:
        """Store every waiting submission in one transaction (one fsync), until none wait.

        Under load, committing each submission on its own costs an fsync and a few round trips
        to the database apiece; one transaction for all who arrived meanwhile costs the same
        for any number of them. Each caller hears back only after COMMIT.
        """
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                ids = await self._insert_attempts([attempt for attempt, _ in batch])
            except Exception as error:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
                continue
            for (attempt, stored), attempt_id in zip(batch, ids, strict=True):
                if stored.done():
                    continue
                if attempt_id is None:
                    stored.set_exception(RoundNotOpen(f"round {attempt.round_id} is not open"))
                else:
                    stored.set_result(attempt_id)

    async def _insert_attempts(self, attempts: list[NewAttempt]) -> list[int | None]:
        """Insert the attempts whose round is open (claims and score events follow by
        trigger); their ids in order, None for the others. A resend (a request stored within
        the window, or twice in this group) gets the original's id and stores nothing."""
        now = time.time()

        async def insert(db: Database) -> tuple[dict[int, int], dict[_Request, int]]:
            row = await db.fetchone("SELECT id FROM rounds WHERE state = 'open'")
            open_round = row[0] if row else None
            stored = await self._stored_requests(db, attempts, now)
            # Each attempt's id: a resend's now, the new ones' once inserted (in VALUES order).
            known: dict[int, int] = {}
            firsts: dict[_Request, int] = {}  # each request's first in this group
            accepted: list[int] = []
            for index, a in enumerate(attempts):
                if a.request is not None:
                    key = (a.player_id, a.request, a.fingerprint)
                    if key in firsts:
                        continue  # filled in from the first, below
                    if key in stored:
                        known[index] = stored[key]
                        continue
                    firsts[key] = index
                if a.round_id == open_round:
                    accepted.append(index)
            returned: list[Row] = []
            if accepted:
                rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(accepted))
                values: list[Any] = [
                    value
                    for a in (attempts[index] for index in accepted)
                    for value in (
                        a.player_id,
                        a.round_id,
                        now,
                        a.strokes_json,
                        a.png,
                        a.image,
                        a.label,
                        a.predicted,
                        json.dumps(a.probs),
                        a.model_version,
                        a.outcome,
                    )
                ]
                returned = await db.fetchall(
                    "INSERT INTO attempts (player_id, round_id, created_at, strokes, png, image,"
                    f" label, predicted, probs, model_version, outcome) VALUES {rows}"
                    " RETURNING id",
                    values,
                )
            # Ids are handed out in VALUES order while we hold the write turn, but RETURNING may
            # list them in any order: sorted, they line up with `accepted`.
            known.update(zip(accepted, sorted(int(r[0]) for r in returned), strict=True))
            first_indexes = set(firsts.values())
            requests = [
                (a.player_id, a.request, a.fingerprint, known[index], now)
                for index, a in enumerate(attempts)
                if index in first_indexes and index in known
            ]
            if requests:
                await db.executemany(
                    "INSERT INTO submission_requests"
                    " (player_id, request, fingerprint, attempt_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (player_id, request, fingerprint)"
                    " DO UPDATE SET attempt_id = excluded.attempt_id,"
                    " created_at = excluded.created_at",
                    requests,
                )
            return known, firsts

        known, firsts = await self._write(insert)
        for index, a in enumerate(attempts):
            if index not in known and a.request is not None:
                first = firsts.get((a.player_id, a.request, a.fingerprint))
                if first is not None and first in known:
                    known[index] = known[first]
        return [known.get(index) for index in range(len(attempts))]

    @staticmethod
    async def _stored_requests(
        db: Database, attempts: list[NewAttempt], now: float
    ) -> dict[_Request, int]:
        """The attempt ids stored within REPLAY_SECONDS for these attempts' requests, in one
        query (a group commit's statements are round trips to the database)."""
        keys = list(
            dict.fromkeys(
                (a.player_id, a.request, a.fingerprint) for a in attempts if a.request is not None
            )
        )
        if not keys:
            return {}
        each = " OR ".join(["(player_id = ? AND request = ? AND fingerprint = ?)"] * len(keys))
        rows = await db.fetchall(
            "SELECT player_id, request, fingerprint, attempt_id FROM submission_requests"
            f" WHERE created_at >= ? AND ({each})",
            [now - REPLAY_SECONDS, *(value for key in keys for value in key)],
        )
        return {(int(p), str(r), str(f)): int(attempt) for p, r, f, attempt in rows}

    async def submitter(self, player_id: int, request: str | None, fingerprint: str) -> Submitter:
        row = await self._reads.fetchone(
            "SELECT p.status, a.id, a.label, a.predicted, a.probs, a.model_version"
            " FROM players p"
            " LEFT JOIN submission_requests r ON r.player_id = p.id AND r.request = ?"
            " AND r.fingerprint = ? AND r.created_at >= ?"
            " LEFT JOIN attempts a ON a.id = r.attempt_id"
            " WHERE p.id = ?",
            (request, fingerprint, time.time() - REPLAY_SECONDS, player_id),
        )
        if row is None:
            raise LookupError(f"There is no player {player_id}.")
        status, attempt_id, label, predicted, probs, model_version = row
        stored = None
        if attempt_id is not None:
            stored = StoredSubmission(
                int(attempt_id), int(label), int(predicted), json.loads(probs), str(model_version)
            )
        return Submitter(status == Status.BANNED, stored)

    async def answer_given(self, player_id: int, task_id: str) -> int | None:
        row = await self._reads.fetchone(
            "SELECT answer FROM votes WHERE voter_id = ? AND task_id = ?"
            " UNION ALL SELECT answer FROM gold_answers WHERE player_id = ? AND task_id = ?",
            (player_id, task_id, player_id, task_id),
        )
        return int(row[0]) if row else None
