"""Live scores and leaderboards: a fold over the stored score events, pushed to subscribers.

`Scores` (game_rules.scoring) is rebuilt from every `score_events` row at startup and then kept
current by folding in the rows committed since (`refresh`), so the live numbers are by
construction the rebuild's numbers. Pushes are coalesced: a change only marks the boards dirty;
one pusher task wakes, sends each subscriber the latest snapshot, and sleeps
`leaderboard.push_interval_seconds` before it may send again — at most one push per interval,
however many votes land in it.

Any process may have committed the events: `changed()` is called when the broker says so
(server/realtime/pubsub.py), and `catch_up()` by the periodic check, in case that message was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from game_rules.leaderboard import Row, board, ranked
from game_rules.scoring import Scores, Tally
from game_rules.settings import RuleSettings
from server.realtime.hub import Connection, in_turns
from server.storage import Repository

log = logging.getLogger(__name__)

BOARDS = ("round", "all", "validators")


class Ranking(NamedTuple):
    rows: list[Row]  # the whole board in rank order (game_rules.leaderboard.ranked)
    position: dict[int, int]  # player id -> index in rows


@dataclass(frozen=True)
class Subscription:
    board: str
    player_id: int | None


class Leaderboards:
    def __init__(
        self, repo: Repository, settings: RuleSettings, round_id: Callable[[], int | None]
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.round_id = round_id  # the current round, for the "round" board
        self.scores = Scores()
        self.names: dict[int, str] = {}
        self._unnamed: set[int] = set()  # players on the boards whose names are not read yet
        self._refreshing = asyncio.Lock()
        self._subscribers: dict[Connection, Subscription] = {}
        self._dirty = asyncio.Event()
        self._pusher: asyncio.Task[None] | None = None
        self._scored_seq = 0  # the newest folded event that moved a board
        self._pushed_seq = 0  # `_scored_seq` when subscribers were last sent the boards

    async def start(self) -> None:
        await self.refresh()
        self._pushed_seq = self._scored_seq
        self._pusher = asyncio.create_task(self._push_loop())

    async def stop(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher

    async def refresh(self) -> None:
        """Fold in the events committed since the last refresh (in seq order), and learn the
        names of players new on the boards (only theirs: every `hello` refreshes, so its cost
        must not grow with the number of players the game has seen)."""
        async with self._refreshing:
            reads = self.repo.consensus_reads()
            events = await reads.events(after=self.scores.last_seq)
            for event in events:
                given = self.scores.apply(event, self.settings)
                if given:
                    self._scored_seq = event.seq
                    self._unnamed.update(award.player_id for award in given)
            self._unnamed -= self.names.keys()
            if self._unnamed:  # (kept until found: a failed read is tried again next time)
                self.names.update(await reads.names(self._unnamed))
                self._unnamed -= self.names.keys()

    def changed(self) -> None:
        """Scores changed: subscribers get the new boards at the next push."""
        self._dirty.set()

    async def catch_up(self) -> None:
        """Fold in what is new; if it moved a board since the last push, push again."""
        await self.refresh()
        if self._scored_seq != self._pushed_seq:
            self._dirty.set()

    def tallies(self, name: str, round_id: int | None = None) -> Mapping[int, Tally]:
        if name == "all":
            return self.scores.all_time
        if name == "validators":
            return self.scores.validators
        round_id = self.round_id() if round_id is None else round_id
        return self.scores.rounds.get(round_id, {}) if round_id is not None else {}

    def ranking(self, name: str) -> Ranking:
        rows = ranked(self.tallies(name))
        return Ranking(rows, {row.player_id: i for i, row in enumerate(rows)})

    def snapshot(
        self,
        name: str,
        player_id: int | None = None,
        limit: int | None = None,
        ranking: Ranking | None = None,
    ) -> dict[str, Any]:
        """A board as the protocol's `leaderboard` message (without `type` and `id`).

        Pass `ranking` to share one sort among many subscribers of the same board."""
        lb = self.settings.leaderboard
        rows, position = ranking or self.ranking(name)
        you = None
        if player_id in position:
            i = position[player_id]
            around = rows[max(0, i - lb.neighbours) : i + lb.neighbours + 1]
            you = {
                "rank": rows[i].rank,
                "of": len(rows),
                "score": rows[i].score,
                "neighbours": [self._row(r) for r in around],
            }
        return {
            "board": name,
            "round_id": self.round_id(),
            "size": len(rows),
            "top": [self._row(r) for r in rows[: limit or lb.top_n]],
            "you": you,
        }

    def _row(self, row: Row) -> dict[str, Any]:
        name = self.names.get(row.player_id, f"player {row.player_id}")
        return {"rank": row.rank, "player_id": row.player_id, "name": name, "score": row.score}

    def stats(self, player_id: int) -> dict[str, Any]:
        """A player's scores, ranks and counts (attempts, fools, verified, ..., gold accuracy)."""
        st = self.scores.stats.get(player_id)
        counts = vars(st).copy() if st is not None else {}
        result: dict[str, Any] = {"player_id": player_id}
        for name in BOARDS:
            tallies = self.tallies(name)
            tally = tallies.get(player_id)
            result[f"{name}_score"] = tally.score if tally else 0
            you = board(tallies, 0, player_id, 0).you if tally else None
            result[f"{name}_rank"] = you.rank if you else None
        result.update(
            {
                key: counts.get(key, 0)
                for key in (
                    "attempts",
                    "fools",
                    "verified",
                    "rejected",
                    "relabelled",
                    "votes_judged",
                    "votes_matched",
                    "gold_answered",
                    "gold_correct",
                )
            }
        )
        result["gold_accuracy"] = st.gold_accuracy if st is not None else None
        return result

    # Subscriptions

    def subscribe(self, connection: Connection, name: str, player_id: int | None) -> None:
        """Replaces the connection's previous subscription."""
        self._subscribers[connection] = Subscription(name, player_id)

    def unsubscribe(self, connection: Connection) -> None:
        self._subscribers.pop(connection, None)

    async def _push_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.refresh()
                self._pushed_seq = self._scored_seq
                await self._push()
            except Exception:
                log.exception("leaderboard push failed")
            await asyncio.sleep(self.settings.leaderboard.push_interval_seconds)

    async def _push(self) -> None:
        rankings = {name: self.ranking(name) for name in BOARDS}
        async for subscribers in in_turns(list(self._subscribers.items())):
            for connection, sub in subscribers:
                snapshot = self.snapshot(sub.board, sub.player_id, ranking=rankings[sub.board])
                connection.send({"type": "leaderboard", **snapshot})
