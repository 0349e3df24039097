"""Banning, quarantining and reinstating a player: what a status change means for their claims.

A player taken out of play (quarantined or banned) loses their say on pending claims: each vote
of theirs stops counting and the claim's posterior is recomputed without it (which may settle
or dispute the claim), and every pending claim they drew goes to admin review, since the crowd's
view of a suspect drawer's claim is exactly what their accounts may have swayed. Reinstating
restores play, not the voided votes. The server loads the pending claims, calls `moderate`,
stores the claims it returns and settles those that are no longer pending
(`validation.settle`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from game_rules.consensus import Claim, dispute, void_votes
from game_rules.reliability import Status
from game_rules.settings import RuleSettings


def out_of_play(status: Status) -> bool:
    """Quarantined or banned: no tasks, no counted votes, their claims go to an admin."""
    return status is not Status.ACTIVE


@dataclass(frozen=True)
class Moderation:
    status: Status
    voided: tuple[Claim, ...] = ()  # pending claims they voted on, without their say
    disputed: tuple[Claim, ...] = ()  # pending claims they drew, now for an admin to decide


def moderate(
    player_id: int,
    status: Status,
    voted: Iterable[Claim],
    drawn: Iterable[Claim],
    s: RuleSettings,
) -> Moderation:
    """Set `player_id`'s status; `voted` and `drawn` are the pending claims they voted on and
    drew (only read when the status takes them out of play)."""
    status = Status(status)
    if not out_of_play(status):
        return Moderation(status)
    return Moderation(
        status,
        voided=tuple(void_votes(claim, player_id, s) for claim in voted),
        disputed=tuple(dispute(claim) for claim in drawn),
    )
