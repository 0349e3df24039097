"""Consensus on one claim: thresholds, minimum voters, dissent, contest, cap, refusals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import counted, trusted_voter

from game_rules import consensus as cs
from game_rules import reliability as rl
from game_rules.answers import ANSWERS, NOT_A_DIGIT
from server.config import default_rules

S = default_rules()
DRAWER = 100
CLAIMED, MODEL = 7, 1


def claim(prior: float = 0.8) -> cs.Claim:
    return cs.new_claim(1, DRAWER, CLAIMED, MODEL, prior, S)


def vote_all(c: cs.Claim, answers: list[int], first_voter: int = 1) -> cs.Claim:
    for i, answer in enumerate(answers):
        voter = first_voter + i
        c = cs.record_vote(c, voter, answer, counted(voter, DRAWER, answer, S), S)
    return c


def test_three_agreeing_trusted_voters_verify() -> None:
    c = vote_all(claim(), [7, 7])
    assert c.pending
    c = vote_all(c, [7], first_voter=3)
    assert c.outcome is cs.Outcome.VERIFIED and c.label == 7
    assert c.strength >= S.consensus.verify_threshold


def test_one_dissent_requires_more_voters() -> None:
    c = vote_all(claim(), [7, 2, 7, 7])
    assert c.pending  # 4 counted voters, but a dissent asks for 3 + 2
    c = vote_all(c, [7], first_voter=5)
    assert c.outcome is cs.Outcome.VERIFIED


def test_two_voters_agreeing_on_another_answer_block_crowd_verification() -> None:
    c = vote_all(claim(), [7, 7, 3, 7, 3, 7, 7, 7])
    assert c.outcome is not cs.Outcome.VERIFIED
    assert cs.contested(c, S)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (MODEL, cs.Outcome.REJECTED_MODEL_RIGHT),
        (NOT_A_DIGIT, cs.Outcome.REJECTED_NOT_DIGIT),
        (4, cs.Outcome.RELABELLED),
    ],
)
def test_rejections_say_what_the_crowd_saw(answer: int, outcome: cs.Outcome) -> None:
    c = vote_all(claim(), [answer, answer, answer])
    assert c.outcome is outcome and c.label == answer
    assert c.posterior[CLAIMED] <= S.consensus.reject_threshold


def test_unsure_at_the_cap_goes_to_admin_review_and_the_admin_decides() -> None:
    answers = ([7, 3, 5] * 4)[: S.consensus.vote_cap]
    c = vote_all(claim(), answers)
    assert c.outcome is cs.Outcome.DISPUTED and c.label is None
    assert len(c.votes) == S.consensus.vote_cap
    decided = cs.admin_decide(c, 7)
    assert decided.outcome is cs.Outcome.VERIFIED and decided.settled
    with pytest.raises(cs.VoteRefused) as refused:
        cs.admin_decide(decided, 3)
    assert refused.value.code == "task_settled"


def test_uncounted_votes_do_not_move_the_posterior() -> None:
    c = claim()
    newcomer = rl.Voter(50)
    for i in range(5):
        voter = 50 + i
        ev = rl.assess_vote(rl.Voter(voter), rl.Pair(DRAWER, voter), rl.Drawer(DRAWER), 7, S)
        c = cs.record_vote(c, voter, 7, ev, S)
    assert newcomer.gold_total == 0
    assert c.posterior == claim().posterior and c.counted_voters == 0 and c.pending


@pytest.mark.parametrize(("voter", "code"), [(DRAWER, "own_drawing"), (1, "already_voted")])
def test_refused_votes_change_nothing(voter: int, code: str) -> None:
    c = vote_all(claim(), [7])
    with pytest.raises(cs.VoteRefused) as refused:
        cs.record_vote(c, voter, 7, counted(voter, DRAWER, 7, S), S)
    assert refused.value.code == code
    assert len(c.votes) == 1


def test_votes_on_a_settled_claim_are_refused() -> None:
    c = vote_all(claim(), [7, 7, 7])
    with pytest.raises(cs.VoteRefused) as refused:
        vote_all(c, [7], first_voter=9)
    assert refused.value.code == "task_settled"


def test_a_ring_outvoted_by_honest_voters_loses_together() -> None:
    c = vote_all(claim(), [7, 1, 7, 1, 1, 1])
    assert c.outcome is cs.Outcome.REJECTED_MODEL_RIGHT
    judged = {j.vote.voter_id: j for j in cs.judged_votes(c)}
    assert not judged[1].won and judged[1].lost_together
    assert judged[2].won and not judged[2].lost_together


vote_script = st.lists(
    st.tuples(st.integers(0, ANSWERS - 1), st.booleans(), st.integers(0, 2)),
    min_size=1,
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(vote_script, st.floats(0.05, 0.95))
def test_thresholds_minimum_voters_and_cap_always_hold(
    script: list[tuple[int, bool, int]], prior: float
) -> None:
    """Any sequence of votes (trusted or not, from sharper or blunter voters)."""
    c = claim(prior)
    for i, (answer, trusted, gold_level) in enumerate(script):
        voter = i + 1
        record = rl.Voter(voter)
        if trusted:
            for g in range(8 + 20 * gold_level):
                record = rl.record_gold(record, g % 10, g % 10)
        ev = rl.assess_vote(record, rl.Pair(DRAWER, voter), rl.Drawer(DRAWER), answer, S)
        if not c.pending:
            with pytest.raises(cs.VoteRefused):
                cs.record_vote(c, voter, answer, ev, S)
            continue
        c = cs.record_vote(c, voter, answer, ev, S)
        assert abs(sum(c.posterior) - 1.0) < 1e-9
        assert len(c.votes) <= S.consensus.vote_cap
        distinct = len({v.voter_id for v in c.votes if v.counted})
        if c.outcome is cs.Outcome.VERIFIED:
            needed = S.consensus.min_trusted_voters + (
                S.consensus.dissent_extra_voters if c.dissent else 0
            )
            assert distinct >= needed
            assert c.posterior[CLAIMED] >= S.consensus.verify_threshold
            assert not cs.contested(c, S)
        elif c.settled:
            assert distinct >= S.consensus.min_trusted_voters
            assert c.posterior[CLAIMED] <= S.consensus.reject_threshold
        elif c.outcome is cs.Outcome.DISPUTED:
            assert len(c.votes) == S.consensus.vote_cap


def test_a_banned_voters_pending_votes_stop_counting() -> None:
    c = vote_all(claim(), [7, 7])
    voided = cs.void_votes(c, 1, S)
    assert voided.counted_voters == 1 and len(voided.votes) == 2
    assert voided.posterior == pytest.approx(vote_all(claim(), [7], first_voter=2).posterior)
    # The voided voter still cannot vote again on it.
    with pytest.raises(cs.VoteRefused):
        cs.record_vote(voided, 1, 7, counted(1, DRAWER, 7, S), S)


def test_claims_and_voters_round_trip_through_json() -> None:
    c = vote_all(claim(), [7, 3, 7])
    assert cs.Claim.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    settled = vote_all(claim(), [7, 7, 7])
    assert cs.Claim.from_dict(json.loads(json.dumps(settled.to_dict()))) == settled
    voter = rl.record_settled_vote(trusted_voter(4, S), won=False, lost_together=True)
    assert rl.Voter.from_dict(json.loads(json.dumps(voter.to_dict()))) == voter
