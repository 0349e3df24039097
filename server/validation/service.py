"""Validation as a service: blind tasks, votes, settling claims, moderation and admin review.

The rules live in `game_rules` (pure); this module loads what they need from storage, asks them,
and stores what they decide — each vote, settlement, decision or ban in ONE transaction, so a
crash leaves either all of it or none, and a player hears `voted` only after the commit. After a
commit it publishes `claim_settled` for the drawer (who may be connected to another server
process) and `scores` for the leaderboards, through the broker (server/realtime/pubsub.py).

Tasks are blind: every task is the 28×28 image the model saw, as a PNG (white ink on black), for
claims and for gold alike, so nothing about a task tells a live claim from a gold item.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from game_rules.answers import BadAnswer, check_answer, format_answer, parse_answer
from game_rules.assignment import ClaimTask, next_task
from game_rules.consensus import (
    Claim,
    Outcome,
    VoteRefused,
    admin_decide,
    dispute,
    judged_votes,
    new_claim,
    record_vote,
    usable_as_gold,
    void_votes,
)
from game_rules.reliability import (
    Status,
    accuracy,
    assess_vote,
    drawer_prior,
    record_drawer_claim,
    record_gold,
    record_pair_vote,
    record_settled_vote,
    role,
)
from game_rules.scoring import ClaimSettled, GoldAnswered, awards
from server.config import DataLayout, default_rules, load_rules
from server.pseudonyms import anonymous_player_id, load_or_create_salt
from server.realtime.hub import Connection
from server.realtime.protocol import ProtocolError
from server.realtime.pubsub import Broker
from server.serving.preprocess import image_to_png
from server.storage import Conflict, Player, Repository
from server.storage.consensus import ClaimRow, ConsensusStore, TaskRow
from server.validation.leaderboards import Leaderboards

log = logging.getLogger(__name__)

GOLD_DIGITS = 500  # MNIST test digits kept as gold (a seeded sample)
HISTORY = 20  # settled claims shown to a returning drawer
# After a gap in pub/sub, claim outcomes settled this recently are told again to drawers who
# did not hear them; twice, because the other server processes reconnect a few seconds apart
# (server/realtime/pubsub.py backs off up to 5 s) and their outcomes from meanwhile are missed too.
RETELL_WINDOW = 600.0
RETELL_AFTER = (0.0, 10.0)
TOLD_LIMIT = 10_000  # outcomes remembered before the ones older than RETELL_WINDOW are dropped


class ReviewError(ValueError):
    """An admin decision that cannot happen (the claim is already settled)."""


def image_png(image: bytes) -> str:
    """A stored 28×28 float32 image as base64 PNG."""
    pixels = np.frombuffer(image, dtype="<f4").reshape(28, 28)
    return base64.b64encode(image_to_png(pixels)).decode()


class Validation:
    def __init__(
        self,
        layout: DataLayout,
        repo: Repository,
        round_id: Callable[[], int | None],
        broker: Broker,
    ) -> None:
        self.layout = layout
        self.repo = repo
        self.round_id = round_id
        self.broker = broker
        self.rng = random.Random(secrets.randbits(64))
        self.settings = default_rules()
        self.boards = Leaderboards(repo, self.settings, round_id)
        self._players: dict[int, set[Connection]] = {}
        self._owners: dict[Connection, int] = {}
        # (attempt id, outcome) → when its drawer heard of it here (a disputed claim is told
        # again once an admin decides it)
        self._told: dict[tuple[int, str], float] = {}
        self._retelling: set[asyncio.Task[None]] = set()
        broker.subscribe("claim_settled", self._deliver)
        broker.on_resync(self._heard_gap)
        broker.subscribe("scores", lambda _: self.boards.changed())

    async def start(self) -> None:
        """Load the rules (raises `SettingsError`), seed MNIST gold, fold the score events."""
        self.settings = load_rules(self.layout)
        self.boards = Leaderboards(self.repo, self.settings, self.round_id)
        await self._seed_mnist_gold()
        await self.boards.start()
        log.info("rules loaded", extra={"source": self.settings.source})

    async def stop(self) -> None:
        await self.boards.stop()

    async def _seed_mnist_gold(self) -> None:
        # Never downloads: MNIST gold exists only where the cache already is.
        if not self.layout.mnist_cache.exists():
            log.info("no MNIST cache: gold comes from settled claims only")
            return
        if await self.repo.consensus_reads().gold_digits() >= GOLD_DIGITS:
            return

        def sample() -> list[tuple[int, int, bytes]]:
            from server.mnist import load_mnist

            mnist = load_mnist(self.layout.root)
            picks = np.random.default_rng(0).choice(len(mnist.test_labels), GOLD_DIGITS, False)
            return [
                (int(i), int(mnist.test_labels[i]), image_to_png(mnist.test_images[i] / 255.0))
                for i in picks
            ]

        digits = await asyncio.to_thread(sample)
        async with self.repo.consensus() as store:
            await store.add_mnist_gold(digits)

    # Connections, for pushes to a player wherever they are connected

    def connect(self, player_id: int, connection: Connection) -> None:
        self._players.setdefault(player_id, set()).add(connection)
        self._owners[connection] = player_id

    def disconnect(self, connection: Connection) -> None:
        self.boards.unsubscribe(connection)
        player_id = self._owners.pop(connection, None)
        if player_id is not None:
            connections = self._players[player_id]
            connections.discard(connection)
            if not connections:
                del self._players[player_id]

    def _push(self, player_id: int, message: dict[str, Any]) -> None:
        """For the player's connections, on whichever server process they are."""
        self.broker.publish("claim_settled", {"player_id": player_id, "message": message})

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

    def _scores_changed(self) -> None:
        self.broker.publish("scores", {})

    # Tasks and votes

    async def is_banned(self, player_id: int) -> bool:
        voter = await self.repo.consensus_reads().voter(player_id)
        return voter.status is Status.BANNED

    async def task(self, player: Player) -> dict[str, Any] | None:
        """The player's next blind task (`task_id`, `drawing`), or None when there is none.

        An unanswered task that can still be answered is given again: asking anew never lets
        a validator skip to a drawing they like better."""
        reads = self.repo.consensus_reads()
        voter = await reads.voter(player.id)
        if voter.status is Status.BANNED:
            raise ProtocolError("banned", "This player is banned.")
        if voter.status is not Status.ACTIVE:
            return None  # quarantined: no tasks while an admin looks
        found = await reads.open_task(player.id)
        if found is None:
            current = role(voter, self.settings)
            claims = await reads.claim_candidates(player.id)
            digits, gold_claims = await reads.gold_candidates(player.id)
            pick = next_task(
                player.id, current, claims, digits, gold_claims, (), self.rng, self.settings
            )
            if pick is None:
                return None
            task_id = secrets.token_urlsafe(16)
            attempt_id = pick.claim_id if isinstance(pick, ClaimTask) else None
            gold_id = None if isinstance(pick, ClaimTask) else pick.gold_id
            async with self.repo.consensus() as store:
                await store.add_task(task_id, player.id, attempt_id, gold_id)
            found = TaskRow(task_id, player.id, attempt_id, gold_id, answered=False)
        return {"task_id": found.task_id, "drawing": {"png": await self._task_png(reads, found)}}

    async def _task_png(self, reads: ConsensusStore, task: TaskRow) -> str:
        if task.attempt_id is not None:
            return image_png(await reads.image(task.attempt_id))
        assert task.gold_id is not None
        gold = await reads.gold(task.gold_id)
        assert gold is not None
        if gold.png is not None:
            return base64.b64encode(gold.png).decode()
        assert gold.attempt_id is not None
        return image_png(await reads.image(gold.attempt_id))

    async def vote(self, player: Player, task_id: str, raw_answer: object) -> None:
        """Store one answer; returns only after the commit. Refusals change nothing."""
        try:
            answer = parse_answer(raw_answer)
        except BadAnswer as error:
            raise ProtocolError("bad_label", str(error)) from None
        settled: dict[str, Any] | None = None
        try:
            async with self.repo.consensus() as store:
                voter = await store.voter(player.id)
                if voter.status is Status.BANNED:
                    raise ProtocolError("banned", "This player is banned; votes are refused.")
                task = await store.task(task_id)
                if task is None:
                    raise ProtocolError("unknown_task", "There is no such task; ask for a new one.")
                row = await store.claim(task.attempt_id) if task.attempt_id is not None else None
                if row is not None and row.drawer_id == player.id:
                    raise ProtocolError("own_drawing", "Nobody validates their own drawing.")
                if task.player_id != player.id:
                    raise ProtocolError(
                        "task_not_assigned", "This task was given to someone else; ask for one."
                    )
                if task.answered:
                    raise ProtocolError("already_voted", "You already answered this task.")
                await store.answer_task(task.task_id)
                if row is None:
                    await self._answer_gold(store, task, answer)
                else:
                    settled = await self._answer_claim(store, task, row, answer)
        except Conflict:
            # Two tasks for the same item (asked for concurrently), both answered.
            raise ProtocolError("already_voted", "You already answered this drawing.") from None
        if settled is not None:
            self._push(settled["drawer_id"], settled["message"])
        self._scores_changed()

    async def _answer_gold(self, store: ConsensusStore, task: TaskRow, answer: int) -> None:
        assert task.gold_id is not None
        gold = await store.gold(task.gold_id)
        assert gold is not None
        voter = await store.voter(task.player_id)
        await store.save_voter(record_gold(voter, gold.truth, answer))
        await store.add_gold_answer(gold.gold_id, task.player_id, task.task_id, answer)
        round_id = self.round_id() or 0
        await store.append_event(GoldAnswered(1, round_id, task.player_id, gold.truth, answer))

    async def _answer_claim(
        self, store: ConsensusStore, task: TaskRow, row: ClaimRow, answer: int
    ) -> dict[str, Any] | None:
        if row.state != "pending":
            raise ProtocolError("task_settled", "This drawing is already decided; ask for another.")
        s = self.settings
        voter = await store.voter(task.player_id)
        drawer = await store.drawer(row.drawer_id)
        pair = await store.pair(row.drawer_id, task.player_id)
        claim = await self._claim_of(store, row)
        evidence = assess_vote(voter, pair, drawer, answer, s)
        try:
            voted = record_vote(claim, task.player_id, answer, evidence, s)
        except VoteRefused as refused:
            raise ProtocolError(refused.code, str(refused)) from None
        await store.save_pair(record_pair_vote(pair, row.claimed, answer))
        await store.add_vote(row.attempt_id, task.player_id, task.task_id, answer, evidence.counts)
        await store.save_claim(voted)
        return None if voted.pending else await self._settle(store, row, voted)

    async def _claim_of(self, store: ConsensusStore, row: ClaimRow) -> Claim:
        """The claim's consensus state; a claim nobody voted on yet starts from its prior."""
        if row.consensus is not None:
            return row.consensus
        prior = drawer_prior(await store.drawer(row.drawer_id), self.settings)
        s = self.settings
        return new_claim(row.attempt_id, row.drawer_id, row.claimed, row.model_label, prior, s)

    async def _settle(
        self, store: ConsensusStore, row: ClaimRow, claim: Claim, by_admin: bool = False
    ) -> dict[str, Any]:
        """Store what settling (or disputing) `claim` means; return the drawer's push."""
        message: dict[str, Any] = {
            "type": "claim_settled",
            "attempt_id": row.attempt_id,
            "outcome": str(claim.outcome),
            "label": row.claimed,
            "consensus_label": None,
            "points": 0,
        }
        if claim.outcome is Outcome.DISPUTED:
            return {"drawer_id": row.drawer_id, "message": message}
        assert claim.label is not None and claim.outcome is not None
        for judged in judged_votes(claim):
            voter = await store.voter(judged.vote.voter_id)
            await store.save_voter(record_settled_vote(voter, judged.won, judged.lost_together))
        drawer = await store.drawer(row.drawer_id)
        await store.save_drawer(record_drawer_claim(drawer, claim.outcome is Outcome.VERIFIED))
        event = ClaimSettled(
            seq=1,  # the database assigns the real one
            round_id=row.round_id,
            claim_id=row.attempt_id,
            drawer_id=row.drawer_id,
            outcome=claim.outcome,
            label=claim.label,
            model_confidence=row.model_confidence,
            votes=tuple((v.voter_id, v.answer, v.counted) for v in claim.votes),
            by_admin=by_admin,
        )
        await store.append_event(event)
        if usable_as_gold(claim, self.settings):
            await store.add_claim_gold(row.attempt_id, claim.label)
        message["consensus_label"] = format_answer(claim.label)
        message["points"] = self.drawer_points(event)
        return {"drawer_id": row.drawer_id, "message": message}

    def drawer_points(self, event: ClaimSettled) -> int:
        return sum(
            a.points
            for a in awards(event, self.settings)
            if a.player_id == event.drawer_id and not a.validation
        )

    # Admin: review and moderation

    async def decide(self, attempt_id: int, raw_label: object) -> dict[str, Any]:
        """An admin settles a pending or disputed claim on 0–9 or "x"."""
        label = parse_answer(raw_label)  # BadAnswer for the caller to report
        async with self.repo.consensus() as store:
            row = await store.claim(attempt_id)
            if row is None:
                raise LookupError(f"There is no claim {attempt_id}.")
            if row.state not in ("pending", "disputed"):
                raise ReviewError(f"Claim {attempt_id} is already {row.state}.")
            decided = admin_decide(await self._claim_of(store, row), check_answer(label))
            await store.save_claim(decided, by_admin=True)
            settled = await self._settle(store, row, decided, by_admin=True)
        self._push(settled["drawer_id"], settled["message"])
        self._scores_changed()
        return settled["message"]

    async def moderate(self, player_id: int, status: Status) -> dict[str, Any]:
        """Ban, quarantine or reinstate. Out of play: their votes on pending claims stop counting
        (each claim's posterior is recomputed without them) and their pending claims go to
        admin review. Reinstating restores play, not the voided votes."""
        pushes: list[dict[str, Any]] = []
        voided = disputed = 0
        async with self.repo.consensus() as store:
            if await store.player_status(player_id) is None:
                raise LookupError(f"There is no player {player_id}.")
            await store.set_player_status(player_id, status)
            if status is not Status.ACTIVE:
                voted, drawn = await store.pending_claims_touching(player_id)
                for attempt_id in voted:
                    row = await store.claim(attempt_id)
                    assert row is not None and row.consensus is not None
                    after = void_votes(row.consensus, player_id, self.settings)
                    await store.save_claim(after)
                    voided += 1
                    if not after.pending:
                        pushes.append(await self._settle(store, row, after))
                for attempt_id in drawn:
                    row = await store.claim(attempt_id)
                    assert row is not None
                    claim = dispute(await self._claim_of(store, row))
                    await store.save_claim(claim)
                    pushes.append(await self._settle(store, row, claim))
                    disputed += 1
        for push in pushes:
            self._push(push["drawer_id"], push["message"])
        self._scores_changed()
        return {
            "player_id": player_id,
            "status": str(status),
            "votes_voided": voided,
            "claims_disputed": disputed,
        }

    async def review(self) -> list[dict[str, Any]]:
        reads = self.repo.consensus_reads()
        rows = await reads.claims_in_state("disputed")
        names = await reads.names(
            [r.drawer_id for r in rows]
            + [v.voter_id for r in rows if r.consensus for v in r.consensus.votes]
        )
        items = []
        for row in rows:
            votes = row.consensus.votes if row.consensus else ()
            items.append(
                {
                    "attempt_id": row.attempt_id,
                    "round_id": row.round_id,
                    "player_id": row.drawer_id,
                    "player": names.get(row.drawer_id),
                    "label": row.claimed,
                    "predicted": row.model_label,
                    "model_confidence": row.model_confidence,
                    "drawing": await reads.drawing(row.attempt_id),
                    "png": image_png(await reads.image(row.attempt_id)),
                    "votes": [
                        {
                            "voter_id": v.voter_id,
                            "name": names.get(v.voter_id),
                            "answer": format_answer(v.answer),
                            "counted": v.counted,
                        }
                        for v in votes
                    ],
                }
            )
        return items

    async def players(self, query: str) -> list[dict[str, Any]]:
        await self.boards.refresh()
        reads = self.repo.consensus_reads()
        found = []
        for player_id, name, status in await reads.find_players(query):
            voter = await reads.voter(player_id)
            stats = self.boards.stats(player_id)
            found.append(
                {
                    "id": player_id,
                    "name": name,
                    "status": status,
                    "attempts": stats["attempts"],
                    "fools": stats["fools"],
                    "verified": stats["verified"],
                    "votes": stats["votes_judged"],
                    "score": stats["all_score"],
                    "trust": round(accuracy(voter, self.settings), 3),
                    "gold_answered": voter.gold_total,
                    "role": str(role(voter, self.settings)),
                }
            )
        return found

    async def history(self, player_id: int) -> list[dict[str, Any]]:
        """The player's latest settled or disputed claims, as `claim_settled` messages."""
        rows = await self.repo.consensus_reads().decided_claims(player_id, HISTORY)
        now = time.monotonic()
        for row in rows:  # the drawer sees these now: a retell after a gap need not repeat them
            self._told.setdefault((row.attempt_id, row.state), now)
        return [self._told_of(row) for row in rows]

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
            message["points"] = self.drawer_points(event)
        return message

    async def votes_export(self) -> list[dict[str, Any]]:
        """Settled claims with their raw votes; player ids anonymised (HMAC, per-deployment)."""
        salt = await asyncio.to_thread(load_or_create_salt, self.layout.pseudonym_salt)
        records = []
        for row in await self.repo.consensus_reads().settled_claims():
            votes = row.consensus.votes if row.consensus else ()
            records.append(
                {
                    "attempt_id": row.attempt_id,
                    "round_id": row.round_id,
                    "player": anonymous_player_id(row.drawer_id, salt),
                    "claimed": row.claimed,
                    "predicted": row.model_label,
                    "outcome": row.state,
                    "consensus_label": None if row.label is None else format_answer(row.label),
                    "strength": row.consensus.strength if row.consensus else None,
                    "votes": [
                        {
                            "voter": anonymous_player_id(v.voter_id, salt),
                            "answer": format_answer(v.answer),
                            "counted": v.counted,
                        }
                        for v in votes
                    ],
                }
            )
        return records
