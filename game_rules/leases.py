"""Task leases: how many validators may be looking at one claim at once.

A claim task handed out is a lease on one of the claim's slots. Without a limit, the neediest
claims go to every validator who asks, the first few votes settle the claim, and the rest
arrive on a decided drawing: work wasted, more so the longer people think. So a claim has as
many slots as the fewest votes that could still settle it (`votes_to_settle`), plus
`gold.lease_slack`: if every lease holder answers, at most the slack votes come too late.
A lease ends when its task is answered, or `gold.lease_seconds` after it was handed out (a
validator who walked away frees the slot; their task can still be answered while the claim is
pending). Asking again gives the same task, not a second lease.

The count is a lower bound on purpose: fewer leases only mean a claim waits for its next
voter, more leases mean wasted votes. A moderator's vote can settle a claim alone; that is an
admin's shortcut and not counted here.
"""

from __future__ import annotations

from game_rules.answers import ANSWERS
from game_rules.consensus import Claim, established_backers, established_needed
from game_rules.settings import RuleSettings


def votes_to_settle(claim: Claim, s: RuleSettings) -> int:
    """The fewest further votes that could settle (or dispute) the pending `claim`, at least 1."""
    c = s.consensus
    counted = claim.counted_voters
    verify = max(
        c.min_trusted_voters + (c.dissent_extra_voters if claim.dissent else 0) - counted,
        established_needed(claim, s) - established_backers(claim, claim.claimed),
    )
    best_other = max(established_backers(claim, a) for a in range(ANSWERS) if a != claim.claimed)
    reject = max(c.min_trusted_voters - counted, s.trust.min_established_voters - best_other)
    capped = c.vote_cap - len(claim.votes)
    if claim.extra_voters:
        # A clustered drawer's claim is disputed once the counted votes split.
        split = 1 if claim.counted_voters else 2
        capped = min(capped, split)
    return max(1, min(verify, reject, capped))


def first_votes_to_settle(s: RuleSettings) -> int:
    """`votes_to_settle` for a claim nobody has voted on yet (its drawer in good standing)."""
    c = s.consensus
    return max(1, min(max(c.min_trusted_voters, s.trust.min_established_voters), c.vote_cap))


def lease_free(needed: int | None, leases: int, s: RuleSettings) -> bool:
    """May a claim that may still need `needed` votes (None: no vote yet) and has `leases`
    live leases be handed to one more validator?"""
    slots = (first_votes_to_settle(s) if needed is None else needed) + s.gold.lease_slack
    return leases < slots
