"""Admin review: deciding disputed claims, moderating players, looking players up.

Each decision or moderation is ONE transaction with everything it settles; the drawers hear
of their claims after the commit (server/validation/pushes.py). What a decision or a status
change means is the rules' (`game_rules.consensus.admin_decide`, `game_rules.moderation`); this
loads what they need and stores what they decide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from game_rules.answers import check_answer, format_answer, parse_answer
from game_rules.consensus import Vote, admin_decide, established_backers, established_needed
from game_rules.moderation import Moderation, moderate, out_of_play
from game_rules.names import name_key
from game_rules.reliability import (
    Status,
    accuracy,
    established,
    graph_clustered,
    model_oracle,
    role,
    set_moderator,
    trust_weight,
)
from game_rules.settings import RuleSettings
from server.storage import Repository
from server.storage.consensus import ClaimRow, ConsensusStore
from server.validation.images import image_png
from server.validation.leaderboards import Leaderboards
from server.validation.pushes import Pushes
from server.validation.settling import Push, claim_of, store_claim, store_settlement


class ReviewError(ValueError):
    """An admin decision that cannot happen (the claim is already settled)."""


class Review:
    def __init__(
        self,
        repo: Repository,
        settings: Callable[[], RuleSettings],
        boards: Callable[[], Leaderboards],
        pushes: Pushes,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.boards = boards
        self.pushes = pushes

    async def decide(self, attempt_id: int, raw_label: object) -> dict[str, Any]:
        """An admin settles a pending or disputed claim on 0–9 or "x"."""
        label = parse_answer(raw_label)  # BadAnswer for the caller to report
        s = self.settings()

        async def settle(store: ConsensusStore) -> Push:
            row = await store.claim(attempt_id)
            if row is None:
                raise LookupError(f"There is no claim {attempt_id}.")
            if row.state not in ("pending", "disputed"):
                raise ReviewError(f"Claim {attempt_id} is already {row.state}.")
            decided = admin_decide(await claim_of(store, row, s), check_answer(label))
            await store_claim(store, decided, s, by_admin=True)
            return await store_settlement(store, row, decided, s, by_admin=True)

        settled = await self.repo.write_consensus(settle)
        self.pushes.push(settled)
        self.pushes.scores_changed()
        return settled.message

    async def moderate(self, player_id: int, status: Status) -> dict[str, Any]:
        """Ban, quarantine or reinstate (what that means: `game_rules.moderation`)."""
        s = self.settings()

        async def apply(store: ConsensusStore) -> tuple[Moderation, list[Push]]:
            if await store.player_status(player_id) is None:
                raise LookupError(f"There is no player {player_id}.")
            voted_ids: list[int] = []
            drawn_ids: list[int] = []
            if out_of_play(status):
                voted_ids, drawn_ids = await store.pending_claims_touching(player_id)
            voted = [_found(await store.claim(attempt_id)) for attempt_id in voted_ids]
            drawn = [_found(await store.claim(attempt_id)) for attempt_id in drawn_ids]
            decided = moderate(
                player_id,
                status,
                [await claim_of(store, row, s) for row in voted],
                [await claim_of(store, row, s) for row in drawn],
                s,
            )
            await store.set_player_status(player_id, decided.status)
            pushes: list[Push] = []
            changed = zip((*voted, *drawn), (*decided.voided, *decided.disputed), strict=True)
            for row, claim in changed:
                await store_claim(store, claim, s)
                if not claim.pending:
                    pushes.append(await store_settlement(store, row, claim, s))
            return decided, pushes

        decided, pushes = await self.repo.write_consensus(apply)
        for push in pushes:
            self.pushes.push(push)
        self.pushes.scores_changed()
        return {
            "player_id": player_id,
            "status": str(decided.status),
            "votes_voided": len(decided.voided),
            "claims_disputed": len(decided.disputed),
        }

    async def review(self) -> list[dict[str, Any]]:
        """The disputed claims, with what an admin needs to decide each."""
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
                    "votes": [_vote(v, names) for v in votes],
                }
            )
        return items

    async def players(self, query: str) -> list[dict[str, Any]]:
        """Players whose name contains `query`, with their stats, trust and role."""
        boards = self.boards()
        await boards.refresh()
        s = self.settings()
        reads = self.repo.consensus_reads()
        found = []
        for player_id, name, status in await reads.find_players(name_key(query)):
            voter = await reads.voter(player_id)
            stats = boards.stats(player_id)
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
                    "trust": round(accuracy(voter, s), 3),
                    "gold_answered": voter.gold_total,
                    "role": str(role(voter, s)),
                    "weight": round(trust_weight(voter, s), 3),
                    "established": established(voter, s),
                    "moderator": voter.moderator,
                    "model_oracle": model_oracle(voter, s),
                    "clustered": graph_clustered(voter, s),
                }
            )
        return found

    async def set_moderator(self, player_id: int, moderator: bool) -> dict[str, Any]:
        """Mark (or unmark) a trusted validator: their vote decides a claim, as an admin's
        would, so a small game settles without waiting for established strangers."""

        async def mark(store: ConsensusStore) -> None:
            if await store.player_status(player_id) is None:
                raise LookupError(f"There is no player {player_id}.")
            await store.save_voter(set_moderator(await store.voter(player_id), moderator))

        await self.repo.write_consensus(mark)
        return {"player_id": player_id, "moderator": moderator}

    async def audit(self, attempt_id: int) -> dict[str, Any]:
        """A claim's every vote, with its weight and why it did or did not count."""
        reads = self.repo.consensus_reads()
        row = await reads.claim(attempt_id)
        if row is None:
            raise LookupError(f"There is no claim {attempt_id}.")
        s = self.settings()
        claim = row.consensus
        votes = claim.votes if claim else ()
        names = await reads.names([row.drawer_id, *(v.voter_id for v in votes)])
        return {
            "attempt_id": row.attempt_id,
            "player_id": row.drawer_id,
            "player": names.get(row.drawer_id),
            "label": row.claimed,
            "predicted": row.model_label,
            "state": row.state,
            "consensus_label": None if row.label is None else format_answer(row.label),
            "posterior": round(claim.posterior[row.claimed], 4) if claim else None,
            "established_confirmers": established_backers(claim, row.claimed) if claim else 0,
            "established_needed": established_needed(claim, s) if claim else None,
            "votes": [_vote(v, names) for v in votes],
        }


def _vote(v: Vote, names: dict[int, str]) -> dict[str, Any]:
    """One vote for the admin: its answer, whether and how much it counted, and why."""
    return {
        "voter_id": v.voter_id,
        "name": names.get(v.voter_id),
        "answer": format_answer(v.answer),
        "counted": v.counted,
        "weight": round(v.weight, 3),
        "reason": v.reason,
    }


def _found(row: ClaimRow | None) -> ClaimRow:
    """A claim this transaction has just listed, so it is there."""
    assert row is not None
    return row
