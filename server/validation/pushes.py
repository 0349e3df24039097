"""Telling drawers how their claims settled, wherever they are connected.

A claim may settle on any server process (the vote that settles it arrives wherever its voter
is connected), so each push goes through the broker (`claim_settled`, server/realtime/pubsub.py)
and every process delivers it to its own connections of that player. After a gap in pub/sub,
outcomes settled meanwhile are told again, once each: `_told` remembers what was heard here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from game_rules.answers import format_answer
from game_rules.consensus import Outcome
from game_rules.scoring import ClaimSettled, drawer_points
from game_rules.settings import RuleSettings
from server.realtime.hub import Connection
from server.realtime.pubsub import Broker
from server.storage import Repository
from server.storage.consensus import ClaimRow
from server.validation.settling import Push

log = logging.getLogger(__name__)

HISTORY = 20  # settled claims shown to a returning drawer
# After a gap in pub/sub, claim outcomes settled this recently are told again to drawers who
# did not hear them; twice, because the other server processes reconnect a few seconds apart
# (server/realtime/pubsub.py backs off up to 5 s) and their outcomes from meanwhile are missed too.
RETELL_WINDOW = 600.0
RETELL_AFTER = (0.0, 10.0)
TOLD_LIMIT = 10_000  # outcomes remembered before the ones older than RETELL_WINDOW are dropped


class Pushes:
    def __init__(
        self, repo: Repository, broker: Broker, settings: Callable[[], RuleSettings]
    ) -> None:
        self.repo = repo
        self.broker = broker
        self.settings = settings
        self._players: dict[int, set[Connection]] = {}
        self._owners: dict[Connection, int] = {}
        # (attempt id, outcome) → when its drawer heard of it here (a disputed claim is told
        # again once an admin decides it)
        self._told: dict[tuple[int, str], float] = {}
        self._retelling: set[asyncio.Task[None]] = set()
        broker.subscribe("claim_settled", self._deliver)
        broker.on_resync(self._heard_gap)

    @property
    def players_online(self) -> int:
        """Players with a connection to this process."""
        return len(self._players)

    def connect(self, player_id: int, connection: Connection) -> None:
        self._players.setdefault(player_id, set()).add(connection)
        self._owners[connection] = player_id

    def disconnect(self, connection: Connection) -> None:
        player_id = self._owners.pop(connection, None)
        if player_id is not None:
            connections = self._players[player_id]
            connections.discard(connection)
            if not connections:
                del self._players[player_id]

    def push(self, push: Push) -> None:
        """For the player's connections, on whichever server process they are."""
        self.broker.publish("claim_settled", {"player_id": push.player_id, "message": push.message})

    def scores_changed(self) -> None:
        """Every process's leaderboards fold the new score events."""
        self.broker.publish("scores", {})

    async def history(self, player_id: int) -> list[dict[str, Any]]:
        """The player's latest settled or disputed claims, as `claim_settled` messages."""
        rows = await self.repo.consensus_reads().decided_claims(player_id, HISTORY)
        now = time.monotonic()
        for row in rows:  # the drawer sees these now: a retell after a gap need not repeat them
            self._told.setdefault((row.attempt_id, row.state), now)
        return [self._told_of(row) for row in rows]

    def _deliver(self, payload: dict[str, Any]) -> None:
        player_id, message = payload.get("player_id"), payload.get("message")
        if not isinstance(player_id, int) or not isinstance(message, dict):
            log.warning("ignored a malformed claim_settled message")
            return
        attempt_id, outcome = message.get("attempt_id"), message.get("outcome")
        if isinstance(attempt_id, int) and isinstance(outcome, str):
            if (attempt_id, outcome) in self._told:  # already told after a gap
                return
            self._told[attempt_id, outcome] = time.monotonic()
            if len(self._told) > TOLD_LIMIT:
                self._forget_told()
        for connection in list(self._players.get(player_id, ())):
            connection.send(message)

    def _heard_gap(self) -> None:
        task = asyncio.create_task(self._retell())
        self._retelling.add(task)
        task.add_done_callback(self._retelling.discard)

    async def _retell(self) -> None:
        """Tell connected drawers the outcomes a gap in pub/sub may have swallowed (each
        outcome once: `_told` remembers what was heard here, by message or in `welcome`)."""
        for delay in RETELL_AFTER:
            await asyncio.sleep(delay)
            self._forget_told()
            since = time.time() - RETELL_WINDOW
            reads = self.repo.consensus_reads()
            try:
                for player_id in list(self._players):
                    for row in await reads.decided_claims(player_id, HISTORY):
                        if row.settled_at is not None and row.settled_at >= since:
                            message = {"type": "claim_settled", **self._told_of(row)}
                            self._deliver({"player_id": player_id, "message": message})
            except Exception:
                log.exception("telling drawers the outcomes they missed failed")

    def _forget_told(self) -> None:
        horizon = time.monotonic() - RETELL_WINDOW
        self._told = {told: at for told, at in self._told.items() if at >= horizon}

    def _told_of(self, row: ClaimRow) -> dict[str, Any]:
        """A decided claim as in its drawer's `claim_settled` message."""
        message: dict[str, Any] = {
            "attempt_id": row.attempt_id,
            "outcome": row.state,
            "label": row.claimed,
            "consensus_label": None if row.label is None else format_answer(row.label),
            "points": 0,
        }
        if row.label is not None:
            event = ClaimSettled(
                1,
                row.round_id,
                row.attempt_id,
                row.drawer_id,
                Outcome(row.state),
                row.label,
                row.model_confidence,
            )
            message["points"] = drawer_points(event, self.settings())
        return message
