"""Blind tasks and votes: which drawing a validator sees next, and storing their answer.

Tasks are blind: every task is the 28×28 image the model saw, as a PNG (white ink on black), for
claims and for gold alike, so nothing about a task tells a live claim from a gold item. Each
vote is stored in ONE transaction with everything it decides (`game_rules.validation`): a crash
leaves all of it or none, and a player hears `voted` only after the commit.
"""

from __future__ import annotations

import base64
import random
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from game_rules.answers import BadAnswer, parse_answer
from game_rules.assignment import ClaimTask, next_task
from game_rules.consensus import VoteRefused
from game_rules.leases import lease_free
from game_rules.reliability import Role, Status, Voter, role
from game_rules.settings import RuleSettings
from game_rules.validation import GoldAnswer, answer_gold, cast_vote, late_vote, warmup
from server.realtime.protocol import ProtocolError
from server.storage import Conflict, Player, Repository
from server.storage.consensus import ClaimRow, ConsensusStore, TaskRow
from server.validation.images import image_png
from server.validation.pushes import Pushes
from server.validation.settling import Push, claim_of, store_claim, store_settlement


class Tasks:
    def __init__(
        self,
        repo: Repository,
        settings: Callable[[], RuleSettings],
        round_id: Callable[[], int | None],
        pushes: Pushes,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.round_id = round_id
        self.pushes = pushes
        self.rng = random.Random(secrets.randbits(64))

    async def task(self, player: Player) -> dict[str, Any] | None:
        """The player's next blind task (`task_id`, `drawing`), or None when there is none.

        An unanswered task that can still be answered is given again (the same lease, not a
        second one): asking anew never lets a validator skip to a drawing they like better."""
        reads = self.repo.consensus_reads()
        voter = await reads.voter(player.id)
        if voter.status is Status.BANNED:
            raise ProtocolError("banned", "This player is banned.")
        if voter.status is not Status.ACTIVE:
            return None  # quarantined: no tasks while an admin looks
        found = await reads.open_task(player.id)
        if found is None:
            found = await self._new_task(player, role(voter, self.settings()))
            if found is None:
                return None
        return {"task_id": found.task_id, "drawing": {"png": await self._task_png(reads, found)}}

    async def _new_task(self, player: Player, current: Role) -> TaskRow | None:
        """Pick a task and store it; a claim task is a lease on one of the claim's slots
        (game_rules/leases.py), checked again under the write lock, as another request (on any
        server process) may have taken the last slot since the candidates were read."""
        s = self.settings()
        reads = self.repo.consensus_reads()
        for _ in range(3):
            since = time.time() - s.gold.lease_seconds
            claims = await reads.claim_candidates(player.id, since)
            digits, gold_claims = await reads.gold_candidates(player.id)
            pick = next_task(player.id, current, claims, digits, gold_claims, (), self.rng, s)
            if pick is None:
                return None
            attempt_id = pick.claim_id if isinstance(pick, ClaimTask) else None
            gold_id = None if isinstance(pick, ClaimTask) else pick.gold_id
            task = TaskRow(
                secrets.token_urlsafe(16), player.id, attempt_id, gold_id, answered=False
            )
            if await self.repo.write_consensus(partial(_store_task, task=task, since=since, s=s)):
                return task
        return None

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

    async def progress(self, player_id: int) -> dict[str, Any]:
        """The validator's streak and, while they are in warm-up, their progress through it."""
        voter = await self.repo.consensus_reads().voter(player_id)
        return _progress(voter, self.settings())

    async def vote(self, player: Player, task_id: str, raw_answer: object) -> dict[str, Any]:
        """Store one answer; returns only after the commit, with what the vote earned and the
        validator's progress (the `voted` fields, docs/protocol.md). Gold and claim votes get
        the same fields: `result` (`right`/`wrong` for gold, `pending` for a claim, judged when
        it settles, `late` for a claim decided while the player thought: it counts for their
        standing, not for the claim), `points` and `streak`. Refusals change nothing."""
        try:
            answer = parse_answer(raw_answer)
        except BadAnswer as error:
            raise ProtocolError("bad_label", str(error)) from None

        async def store_vote(store: ConsensusStore) -> tuple[dict[str, Any], Push | None]:
            settled: Push | None = None
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
                gold = await self._answer_gold(store, task, answer)
                # Never the true label: a wrong answer hears only that it was not expected.
                result = "right" if gold.right else "wrong"
                earned = {"result": result, "points": gold.points}
                progress = _progress(gold.voter, self.settings(), gold)
            elif row.state == "pending":
                settled = await self._answer_claim(store, task, row, answer)
                earned = {"result": "pending", "points": 0}  # points come when it settles
                progress = _progress(voter, self.settings())
            else:
                await self._answer_late(store, task, row, answer)
                earned = {"result": "late", "points": 0}
                progress = _progress(voter, self.settings())
            return {**earned, **progress}, settled

        try:
            reply, settled = await self.repo.write_consensus(store_vote)
        except Conflict:
            # Two tasks for the same item (asked for concurrently), both answered.
            raise ProtocolError("already_voted", "You already answered this drawing.") from None
        if settled is not None:
            self.pushes.push(settled)
        self.pushes.scores_changed()
        return reply

    async def _answer_gold(self, store: ConsensusStore, task: TaskRow, answer: int) -> GoldAnswer:
        assert task.gold_id is not None
        gold = await store.gold(task.gold_id)
        assert gold is not None
        voter = await store.voter(task.player_id)
        answered = answer_gold(
            voter,
            gold.truth,
            answer,
            self.round_id() or 0,
            self.settings(),
            gold.model_label,
            time.time(),
        )
        await store.save_voter(answered.voter)
        await store.add_gold_answer(gold.gold_id, task.player_id, task.task_id, answer)
        await store.append_event(answered.event)
        return answered

    async def _answer_claim(
        self, store: ConsensusStore, task: TaskRow, row: ClaimRow, answer: int
    ) -> Push | None:
        s = self.settings()
        voter = await store.voter(task.player_id)
        drawer = await store.drawer(row.drawer_id)
        pair = await store.pair(row.drawer_id, task.player_id)
        claim = await claim_of(store, row, s)
        try:
            cast = cast_vote(claim, voter, pair, drawer, answer, s)
        except VoteRefused as refused:
            raise ProtocolError(refused.code, str(refused)) from None
        await store.save_pair(cast.pair)
        await store.add_vote(row.attempt_id, task.player_id, task.task_id, answer, cast.counted)
        await store_claim(store, cast.claim, s)
        return None if cast.claim.pending else await store_settlement(store, row, cast.claim, s)

    async def _answer_late(
        self, store: ConsensusStore, task: TaskRow, row: ClaimRow, answer: int
    ) -> None:
        """A vote on a claim decided after the task was handed out (`late_vote`)."""
        voter = await store.voter(task.player_id)
        pair = await store.pair(row.drawer_id, task.player_id)
        try:
            late = late_vote(await claim_of(store, row, self.settings()), voter, pair, answer)
        except VoteRefused as refused:
            raise ProtocolError(refused.code, str(refused)) from None
        await store.save_voter(late.voter)
        await store.save_pair(late.pair)
        await store.add_vote(row.attempt_id, task.player_id, task.task_id, answer, False)
        if late.claim != row.consensus:
            await store_claim(store, late.claim, self.settings())


def _progress(voter: Voter, s: RuleSettings, gold: GoldAnswer | None = None) -> dict[str, Any]:
    """`streak`, and `warmup` while in warm-up (after a warm-up answer, up to complete)."""
    progress: dict[str, Any] = {"streak": voter.gold_streak}
    during = gold.warmup if gold is not None else warmup(voter, s)
    if during is not None:
        progress["warmup"] = during.to_dict()
    return progress


async def _store_task(store: ConsensusStore, task: TaskRow, since: float, s: RuleSettings) -> bool:
    """Store `task`; a claim task only while the claim has a lease free (else False)."""
    if task.attempt_id is not None and not lease_free(
        *await store.leases(task.attempt_id, since), s
    ):
        return False
    await store.add_task(task.task_id, task.player_id, task.attempt_id, task.gold_id)
    return True
