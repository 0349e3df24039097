"""Task leases (`game_rules.leases`) and late votes (`validation.late_vote`): a claim is handed
to no more validators than votes it may still need, and a vote that arrives after its claim was
decided is judged against the outcome instead of being refused."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import new_voter, trusted_voter

from game_rules import consensus as cs
from game_rules import reliability as rl
from game_rules.assignment import Candidate, ClaimTask, next_task
from game_rules.leases import first_votes_to_settle, lease_free, votes_to_settle
from game_rules.settings import with_changes
from game_rules.validation import cast_vote, late_vote
from server.config import default_rules

S = default_rules()
NO_GOLD = with_changes(S, gold={"rate": 0.0})
DRAWER = 100
CLAIMED, MODEL = 7, 1
VOTERS = {i: trusted_voter(i, S) for i in range(1, 13)}
LEARNERS = {i: new_voter(i, S) for i in range(13, 17)}


def vote(claim: cs.Claim, voter: rl.Voter, answer: int, drawer: rl.Drawer) -> cs.Claim:
    pair = rl.Pair(DRAWER, voter.player_id)
    return cast_vote(claim, voter, pair, drawer, answer, S).claim


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 16), st.integers(0, 10)),
        min_size=1,
        max_size=12,
        unique_by=lambda v: v[0],
    ),
    st.floats(0.05, 0.95),
    st.integers(0, 3),
)
def test_fewer_votes_than_it_may_still_need_never_decide_a_claim(
    votes: list[tuple[int, int]], prior: float, extra: int
) -> None:
    """The lease count is a lower bound: if only the lease holders vote, none votes too late.
    Checked from every state the votes pass through."""
    voters, drawer = {**VOTERS, **LEARNERS}, rl.Drawer(DRAWER)
    claim = cs.new_claim(1, DRAWER, CLAIMED, MODEL, prior, S, extra)
    assert votes_to_settle(claim, S) >= (1 if extra else first_votes_to_settle(S))
    for start, (voter_id, answer) in enumerate(votes):
        needed, after = votes_to_settle(claim, S), claim
        for other, other_answer in votes[start : start + needed - 1]:
            after = vote(after, voters[other], other_answer, drawer)
        assert after.pending, (needed, after)
        claim = vote(claim, voters[voter_id], answer, drawer)
        if not claim.pending:
            break


def test_a_fresh_claim_has_as_many_slots_as_votes_to_settle_it_plus_the_slack() -> None:
    needed = first_votes_to_settle(S)
    assert needed == max(S.consensus.min_trusted_voters, S.trust.min_established_voters)
    assert lease_free(None, needed - 1, S) and not lease_free(None, needed, S)
    roomy = with_changes(S, gold={"lease_slack": 2})
    assert lease_free(None, needed + 1, roomy) and not lease_free(None, needed + 2, roomy)


def test_each_vote_uses_up_a_slot_and_a_split_crowd_may_decide_sooner() -> None:
    claim = cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, S)
    drawer = rl.Drawer(DRAWER)
    confirmed = vote(claim, VOTERS[1], CLAIMED, drawer)
    assert votes_to_settle(confirmed, S) == votes_to_settle(claim, S) - 1 == 2
    # A dissent keeps verifying far off, but one more vote for 3 could reject the claim.
    dissent = vote(confirmed, VOTERS[2], 3, drawer)
    assert votes_to_settle(dissent, S) == 1


def test_a_claim_without_a_free_slot_is_not_handed_out() -> None:
    full = Candidate(1, drawer_id=99, votes=0, created=0, leases=first_votes_to_settle(S))
    open_ = Candidate(2, drawer_id=99, votes=1, created=1, leases=0, needed=2)
    rng = random.Random(0)
    picks = {
        next_task(5, rl.Role.TRUSTED, [full, open_], [], [], (), rng, NO_GOLD) for _ in range(50)
    }
    assert picks == {ClaimTask(2)}
    nothing = next_task(5, rl.Role.TRUSTED, [full], [], [], (), rng, NO_GOLD)
    assert nothing is None


def decided(answers: list[int]) -> cs.Claim:
    claim, drawer = cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, S), rl.Drawer(DRAWER)
    for voter_id, answer in enumerate(answers, start=1):
        claim = vote(claim, VOTERS[voter_id], answer, drawer)
    assert not claim.pending
    return claim


def test_a_late_vote_on_a_settled_claim_counts_for_standing_not_for_the_claim() -> None:
    claim = decided([CLAIMED] * 3)
    assert claim.outcome is cs.Outcome.VERIFIED
    voter, pair = VOTERS[9], rl.Pair(DRAWER, 9)
    agreed = late_vote(claim, voter, pair, CLAIMED)
    assert agreed.claim == claim
    assert (agreed.voter.settled, agreed.voter.lost) == (voter.settled + 1, voter.lost)
    assert (agreed.pair.votes, agreed.pair.agreed) == (1, 1)
    lost = late_vote(claim, voter, pair, MODEL)
    assert (lost.voter.settled, lost.voter.lost) == (voter.settled + 1, voter.lost + 1)
    assert (lost.pair.votes, lost.pair.agreed) == (1, 0)


def test_a_late_vote_on_a_disputed_claim_waits_uncounted_for_the_admin() -> None:
    claim = cs.dispute(cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, S))
    late = late_vote(claim, VOTERS[9], rl.Pair(DRAWER, 9), 3)
    assert late.voter == VOTERS[9]
    assert late.claim.votes[-1] == cs.Vote(9, 3, counted=False, reason="late")
    assert late.claim.posterior == claim.posterior and late.claim.outcome is cs.Outcome.DISPUTED


@pytest.mark.parametrize(
    ("voter_id", "code"), [(DRAWER, "own_drawing"), (1, "already_voted")], ids=["own", "twice"]
)
def test_a_late_vote_is_refused_like_any_vote(voter_id: int, code: str) -> None:
    claim = decided([CLAIMED] * 3)
    with pytest.raises(cs.VoteRefused) as refused:
        late_vote(claim, rl.Voter(voter_id), rl.Pair(DRAWER, voter_id), CLAIMED)
    assert refused.value.code == code


def test_a_vote_on_a_pending_claim_is_cast_not_late() -> None:
    claim = cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, S)
    with pytest.raises(cs.VoteRefused):
        late_vote(claim, VOTERS[1], rl.Pair(DRAWER, 1), CLAIMED)
