"""Storing what the rules decide about a claim, inside the caller's transaction.

`game_rules.validation.settle` decides what a claim leaving `pending` changes; this loads the
records it needs, stores what it returns and builds the drawer's `claim_settled` message. A vote
(tasks.py), an admin's decision and a moderation (review.py) all settle claims through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from game_rules.answers import format_answer
from game_rules.challenges import Prompt, met
from game_rules.consensus import Claim, Outcome, new_claim
from game_rules.leases import votes_to_settle
from game_rules.reliability import claim_extra_voters, drawer_prior
from game_rules.scoring import ChallengeMet
from game_rules.settings import RuleSettings
from game_rules.validation import settle
from server.storage.consensus import ClaimRow, ConsensusStore


@dataclass(frozen=True)
class Push:
    """A message for one player, on whichever server process they are connected."""

    player_id: int
    message: dict[str, Any]


async def claim_of(store: ConsensusStore, row: ClaimRow, s: RuleSettings) -> Claim:
    """The claim's consensus state; a claim nobody voted on yet starts from its prior."""
    if row.consensus is not None:
        return row.consensus
    drawer = await store.drawer(row.drawer_id)
    prior, extra = drawer_prior(drawer, s), claim_extra_voters(drawer, s)
    return new_claim(row.attempt_id, row.drawer_id, row.claimed, row.model_label, prior, s, extra)


async def store_claim(
    store: ConsensusStore, claim: Claim, s: RuleSettings, by_admin: bool = False
) -> None:
    """Store `claim`, with the votes it may still need while pending (its lease slots)."""
    needed = votes_to_settle(claim, s) if claim.pending else None
    await store.save_claim(claim, by_admin, needed)


async def store_settlement(
    store: ConsensusStore, row: ClaimRow, claim: Claim, s: RuleSettings, by_admin: bool = False
) -> Push:
    """Store what settling (or disputing) `claim` means; return the drawer's push."""
    voters = {v.voter_id: await store.voter(v.voter_id) for v in claim.votes}
    drawer = await store.drawer(row.drawer_id)
    settled = settle(claim, voters, drawer, row.round_id, row.model_confidence, s, by_admin)
    for voter in settled.voters:
        await store.save_voter(voter)
    if settled.drawer is not None:
        await store.save_drawer(settled.drawer)
    if settled.event is not None:
        await store.append_event(settled.event)
    bonus = await _meet_challenges(store, row, claim)
    if settled.gold_label is not None:
        await store.add_claim_gold(row.attempt_id, settled.gold_label, row.model_label)
    label = settled.event.label if settled.event is not None else None
    message: dict[str, Any] = {
        "type": "claim_settled",
        "attempt_id": row.attempt_id,
        "outcome": str(claim.outcome),
        "label": row.claimed,
        "consensus_label": None if label is None else format_answer(label),
        "points": settled.points,
    }
    if bonus:
        message["challenges"] = [p.public() for p in bonus]
    return Push(row.drawer_id, message)


async def _meet_challenges(store: ConsensusStore, row: ClaimRow, claim: Claim) -> list[Prompt]:
    """A verified claim earns the bonus of each of its round's prompts it meets first."""
    if claim.outcome != Outcome.VERIFIED:
        return []
    prompts = await store.challenges(row.round_id)
    if not prompts:
        return []
    done = await store.challenges_met(row.drawer_id, row.round_id)
    bonus = met(prompts, row.claimed, row.model_label, done)
    for prompt in bonus:
        await store.meet_challenge(prompt.id, row.drawer_id, row.attempt_id)
        await store.append_event(
            ChallengeMet(0, row.round_id, row.drawer_id, prompt.id, row.attempt_id, prompt.bonus)
        )
    return bonus
