"""Trust that bots and account farms cannot buy (issue 11): slow to earn, K established
confirmers, model oracles and clusters stop counting, moderators decide."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import new_voter, trusted_voter

from game_rules import consensus as cs
from game_rules import reliability as rl
from game_rules.settings import with_changes
from game_rules.validation import cast_vote
from server.config import default_rules

S = default_rules()
DRAWER, CLAIMED, MODEL = 99, 4, 1


def fresh_claim() -> cs.Claim:
    return cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, S)


def vote(claim: cs.Claim, voter: rl.Voter, answer: int) -> cs.Claim:
    pair, drawer = rl.Pair(DRAWER, voter.player_id), rl.Drawer(DRAWER)
    return cast_vote(claim, voter, pair, drawer, answer, S).claim


def test_a_burst_of_gold_from_a_fresh_account_buys_no_trust() -> None:
    burst = new_voter(1, S, gold_right=200)
    assert rl.trust_weight(burst, S) < S.trust.min_weight
    assert rl.assess_vote(burst, rl.Pair(DRAWER, 1), rl.Drawer(DRAWER), 4, S).reason == (
        "new_account"
    )
    assert rl.established(trusted_voter(2, S), S)


def test_fresh_accounts_alone_never_verify_however_many_confirm() -> None:
    claim = fresh_claim()
    for player in range(1, 10):
        if claim.pending:
            claim = vote(claim, new_voter(player, S), CLAIMED)
    assert claim.outcome is not cs.Outcome.VERIFIED


def test_a_validator_who_follows_the_model_on_hard_gold_is_a_model_oracle() -> None:
    bot, human = rl.Voter(1), rl.Voter(2)
    for i in range(40):
        truth = i % 10
        model = (truth + 3) % 10 if i % 2 == 0 else truth  # half the gold is hard
        bot = rl.record_gold(bot, truth, model, model, at=i * 3600.0)
        human = rl.record_gold(human, truth, truth, model, at=i * 3600.0)
    assert rl.model_oracle(bot, S) and not rl.model_oracle(human, S)
    assert rl.role(bot, S) is rl.Role.GOLD_ONLY
    evidence = rl.assess_vote(bot, rl.Pair(DRAWER, 1), rl.Drawer(DRAWER), CLAIMED, S)
    assert (evidence.counts, evidence.reason) == (False, "model_oracle")


def test_a_moderators_vote_decides_the_claim() -> None:
    moderator = rl.set_moderator(rl.Voter(5), True)
    decided = vote(fresh_claim(), moderator, CLAIMED)
    assert decided.outcome is cs.Outcome.VERIFIED
    assert decided.votes[0].reason == "moderator"


def test_each_vote_says_why_it_did_or_did_not_count() -> None:
    claim = vote(fresh_claim(), new_voter(1, S), CLAIMED)
    claim = vote(claim, trusted_voter(2, S), CLAIMED)
    assert [(v.counted, v.reason) for v in claim.votes] == [
        (False, "new_account"),
        (True, "established"),
    ]


def test_a_voter_who_confirms_far_more_than_the_crowd_is_clustered() -> None:
    ring, honest = trusted_voter(1, S), trusted_voter(2, S)
    for _ in range(30):
        ring = rl.record_settled_vote(ring, True, confirmed=True, crowd_rate=0.4)
        honest = rl.record_settled_vote(honest, True, confirmed=False, crowd_rate=0.4)
    assert rl.graph_clustered(ring, S) and not rl.graph_clustered(honest, S)
    assert rl.role(ring, S) is rl.Role.PROBATION  # fewer claims, uncounted, to clear it
    evidence = rl.assess_vote(ring, rl.Pair(DRAWER, 1), rl.Drawer(DRAWER), CLAIMED, S)
    assert evidence.reason == "cluster"


VOTERS = st.lists(
    st.tuples(st.sampled_from(["established", "new", "oracle"]), st.sampled_from([4, 4, 1, 10])),
    min_size=1,
    max_size=10,
)


def _voter(player: int, kind: str) -> rl.Voter:
    if kind == "established":
        return trusted_voter(player, S)
    if kind == "new":
        return new_voter(player, S)
    oracle = trusted_voter(player, S)
    for i in range(20):
        oracle = rl.record_gold(oracle, i % 10, (i + 1) % 10, (i + 1) % 10, at=1e6 + i)
    return oracle


def _decide(voters: list[tuple[str, int]], k: int) -> cs.Claim:
    s = with_changes(S, trust={"min_established_voters": k})
    claim = cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, s)
    for player, (kind, answer) in enumerate(voters, start=1):
        if claim.pending:
            pair, drawer = rl.Pair(DRAWER, player), rl.Drawer(DRAWER)
            claim = cast_vote(claim, _voter(player, kind), pair, drawer, answer, s).claim
    return claim


@settings(max_examples=80, deadline=None)
@given(VOTERS, st.integers(min_value=2, max_value=4))
def test_a_claim_is_never_verified_by_fewer_than_k_established_validators(
    voters: list[tuple[str, int]], k: int
) -> None:
    claim = _decide(voters, k)
    if claim.outcome is cs.Outcome.VERIFIED:
        assert cs.established_backers(claim, CLAIMED) >= k


@settings(max_examples=80, deadline=None)
@given(VOTERS)
def test_removing_a_flagged_voters_votes_never_turns_a_rejection_into_a_verification(
    voters: list[tuple[str, int]],
) -> None:
    claim = _decide(voters, 2)
    without = _decide([v for v in voters if v[0] == "established"], 2)
    if claim.outcome in cs.FINAL_OUTCOMES - {cs.Outcome.VERIFIED}:
        assert without.outcome is not cs.Outcome.VERIFIED
