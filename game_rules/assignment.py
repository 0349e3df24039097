"""Which task a validator gets next.

The server assigns; validators never pick. A claim goes to a validator only if they did not draw
it, have not voted on it, and it has a free lease slot (game_rules/leases.py: no more people on
it than votes it may still need). Among the eligible claims, the ones that most need a vote come
first (fewest votes, then oldest), and the task is drawn at random among the first
`assignment_pool` of them: random so that a ring cannot predict or steer which drawings its
accounts will see, "neediest first" so that no claim starves while others pile up votes (the
uneven queues Dynabench's users reported).

Gold tasks are mixed in unannounced: at `gold.rate` for trusted validators, always for accounts
still warming up or whose gold accuracy is too low (their votes would not count, so a claim
task would only waste a slot). A share `gold.settled_share` of gold comes from settled claims
rather than MNIST: a sybil that confirms its ring's lies cannot tell a recycled drawing of its
ring from a live claim, so it lies on gold too, and gold catches it. A validator on probation
(standing suspended) gets a claim now and then, uncounted, so an honest voter who was unlucky
can clear their record. A validator still earning trust (`Role.LEARNING`) gets gold at the
higher `trust.learning_gold_rate`: gold is how they earn it.

The function is pure over a snapshot: the server passes the candidates it has (a bounded
slice of the pending queue, e.g. the 100 neediest, keeps it cheap) and a seeded `random.Random`.
"""

from __future__ import annotations

import random
from collections.abc import Container, Sequence
from dataclasses import dataclass

from game_rules.leases import lease_free
from game_rules.reliability import Role
from game_rules.settings import RuleSettings


@dataclass(frozen=True)
class Candidate:
    """A pending claim as the assigner sees it."""

    claim_id: int
    drawer_id: int
    votes: int
    created: int  # any increasing stamp: sequence number or time
    voters: frozenset[int] = frozenset()
    leases: int = 0  # tasks on it handed out, unanswered and not expired (`leases`)
    needed: int | None = None  # `leases.votes_to_settle` after its last vote; None before any


@dataclass(frozen=True)
class GoldCandidate:
    gold_id: int
    drawer_id: int | None = None  # None for MNIST digits; the drawer for a settled claim
    voters: frozenset[int] = frozenset()  # who voted on it while it was a claim


@dataclass(frozen=True)
class ClaimTask:
    claim_id: int


@dataclass(frozen=True)
class GoldTask:
    gold_id: int


Task = ClaimTask | GoldTask


def next_task(
    validator_id: int,
    role: Role,
    claims: Sequence[Candidate],
    gold_digits: Sequence[GoldCandidate],
    gold_claims: Sequence[GoldCandidate],
    gold_answered: Container[int],
    rng: random.Random,
    s: RuleSettings,
) -> Task | None:
    """The next task for `validator_id`, or None when there is nothing they may do.

    `gold_digits` are MNIST test digits, `gold_claims` claims settled with high confidence;
    `gold_answered` holds the gold ids this validator has already answered.
    """
    if role is Role.OUT:
        return None

    def gold() -> GoldTask | None:
        first, second = gold_digits, gold_claims
        if rng.random() < s.gold.settled_share:
            first, second = second, first
        return _gold(validator_id, first, gold_answered, rng) or _gold(
            validator_id, second, gold_answered, rng
        )

    if role in (Role.WARMUP, Role.GOLD_ONLY):
        return gold()
    claim_share = 1.0 - (s.trust.learning_gold_rate if role is Role.LEARNING else s.gold.rate)
    if role is Role.PROBATION:
        claim_share *= s.gold.probation_claim_rate
    if rng.random() < claim_share:
        return _claim(validator_id, claims, rng, s) or gold()
    return gold() or _claim(validator_id, claims, rng, s)


def _claim(
    validator_id: int, claims: Sequence[Candidate], rng: random.Random, s: RuleSettings
) -> ClaimTask | None:
    eligible = [
        c
        for c in claims
        if c.drawer_id != validator_id
        and validator_id not in c.voters
        and lease_free(c.needed, c.leases, s)
    ]
    if not eligible:
        return None
    eligible.sort(key=lambda c: (c.votes, c.created, c.claim_id))
    return ClaimTask(rng.choice(eligible[: s.gold.assignment_pool]).claim_id)


def _gold(
    validator_id: int,
    gold: Sequence[GoldCandidate],
    gold_answered: Container[int],
    rng: random.Random,
) -> GoldTask | None:
    def fits(g: GoldCandidate) -> bool:
        return (
            g.drawer_id != validator_id
            and validator_id not in g.voters
            and g.gold_id not in gold_answered
        )

    # A gold pool is large and mostly unseen: a few random draws almost always find one, and
    # the full scan below only runs for a validator who has seen most of it.
    for _ in range(min(8, len(gold))):
        pick = rng.choice(gold)
        if fits(pick):
            return GoldTask(pick.gold_id)
    eligible = [g for g in gold if fits(g)]
    return GoldTask(rng.choice(eligible).gold_id) if eligible else None
