"""Assignment: blind, never your own drawing, never twice, neediest first, gold mixed in."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from game_rules.assignment import Candidate, ClaimTask, GoldCandidate, GoldTask, next_task
from game_rules.reliability import Role
from game_rules.settings import with_changes
from server.config import default_rules

S = default_rules()
NO_GOLD = with_changes(S, gold={"rate": 0.0})
DIGITS = [GoldCandidate(-i) for i in range(1, 51)]

candidates = st.lists(
    st.builds(
        Candidate,
        claim_id=st.integers(1, 10_000),
        drawer_id=st.integers(1, 6),
        votes=st.integers(0, 8),
        created=st.integers(0, 1000),
        voters=st.frozensets(st.integers(1, 6), max_size=4),
    ),
    max_size=30,
    unique_by=lambda c: c.claim_id,
)


@settings(max_examples=100, deadline=None)
@given(candidates, st.integers(1, 6), st.integers(0, 2**32), st.sampled_from(list(Role)))
def test_never_your_own_drawing_nor_one_you_voted_on(
    claims: list[Candidate], validator: int, seed: int, role: Role
) -> None:
    task = next_task(validator, role, claims, DIGITS, [], set(), random.Random(seed), S)
    if isinstance(task, ClaimTask):
        chosen = next(c for c in claims if c.claim_id == task.claim_id)
        assert chosen.drawer_id != validator
        assert validator not in chosen.voters
        assert role in (Role.TRUSTED, Role.LEARNING, Role.PROBATION)


@settings(max_examples=100, deadline=None)
@given(candidates, st.integers(1, 6), st.integers(0, 2**32))
def test_the_task_is_among_the_neediest_eligible_claims(
    claims: list[Candidate], validator: int, seed: int
) -> None:
    task = next_task(validator, Role.TRUSTED, claims, [], [], set(), random.Random(seed), NO_GOLD)
    eligible = sorted(
        (c for c in claims if c.drawer_id != validator and validator not in c.voters),
        key=lambda c: (c.votes, c.created, c.claim_id),
    )
    if not eligible:
        assert task is None
        return
    assert isinstance(task, ClaimTask)
    pool = {c.claim_id for c in eligible[: S.gold.assignment_pool]}
    assert task.claim_id in pool


def test_a_validator_gets_each_claim_once_over_a_whole_queue() -> None:
    rng = random.Random(3)
    queue = {i: Candidate(i, drawer_id=i % 4, votes=0, created=i) for i in range(1, 40)}
    seen: list[int] = []
    while task := next_task(2, Role.TRUSTED, list(queue.values()), [], [], set(), rng, S):
        assert isinstance(task, ClaimTask)
        c = queue[task.claim_id]
        queue[c.claim_id] = Candidate(
            c.claim_id, c.drawer_id, c.votes + 1, c.created, c.voters | {2}
        )
        seen.append(task.claim_id)
    assert len(seen) == len(set(seen)) == sum(1 for i in range(1, 40) if i % 4 != 2)


def test_gold_is_mixed_in_at_the_configured_rate() -> None:
    rng = random.Random(11)
    claims = [Candidate(i, drawer_id=99, votes=0, created=i) for i in range(1, 20)]
    gold = sum(
        isinstance(next_task(1, Role.TRUSTED, claims, DIGITS, [], set(), rng, S), GoldTask)
        for _ in range(4000)
    )
    assert abs(gold / 4000 - S.gold.rate) < 0.03


def test_new_and_unreliable_accounts_get_gold_only_and_out_gets_nothing() -> None:
    claims = [Candidate(1, drawer_id=99, votes=0, created=0)]
    rng = random.Random(0)
    for role in (Role.WARMUP, Role.GOLD_ONLY):
        for _ in range(50):
            assert isinstance(next_task(1, role, claims, DIGITS, [], set(), rng, S), GoldTask)
    assert next_task(1, Role.OUT, claims, DIGITS, [], set(), rng, S) is None


def test_gold_is_never_answered_twice_nor_your_own_drawing() -> None:
    rng = random.Random(5)
    settled = [GoldCandidate(1, drawer_id=7), GoldCandidate(2, drawer_id=8, voters=frozenset({7}))]
    answered: set[int] = set()
    while task := next_task(7, Role.WARMUP, [], DIGITS, settled, answered, rng, S):
        assert isinstance(task, GoldTask)
        assert task.gold_id not in answered and task.gold_id not in (1, 2)
        answered.add(task.gold_id)
    assert len(answered) == len(DIGITS)
