"""One vote, one settlement, one gold answer (`game_rules.validation`), moderation, and the
small decisions the server asks the rules for: was the model fooled, where does closing go."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import trusted_voter

from game_rules import consensus as cs
from game_rules import reliability as rl
from game_rules.moderation import moderate, out_of_play
from game_rules.rounds import RoundState, closes_to
from game_rules.scoring import GoldAnswered, drawer_points
from game_rules.validation import Warmup, answer_gold, cast_vote, settle, warmup
from server.config import default_rules

S = default_rules()
DRAWER = 100
CLAIMED, MODEL = 7, 1


def fresh_claim() -> cs.Claim:
    return cs.new_claim(1, DRAWER, CLAIMED, MODEL, 0.8, S)


def vote_until_decided(answers: list[int]) -> tuple[cs.Claim, dict[int, rl.Voter]]:
    claim, voters = fresh_claim(), {}
    for voter_id, answer in enumerate(answers, start=1):
        if not claim.pending:
            break
        voters[voter_id] = trusted_voter(voter_id, S)
        pair = rl.Pair(DRAWER, voter_id)
        claim = cast_vote(claim, voters[voter_id], pair, rl.Drawer(DRAWER), answer, S).claim
    return claim, voters


def test_a_vote_updates_the_claim_and_the_voters_record_on_that_drawer() -> None:
    voter, pair, drawer = trusted_voter(1, S), rl.Pair(DRAWER, 1), rl.Drawer(DRAWER)
    cast = cast_vote(fresh_claim(), voter, pair, drawer, CLAIMED, S)
    assert cast.counted
    likelihood = cast.claim.votes[0].likelihood
    assert cast.claim.votes == (cs.Vote(1, 7, True, likelihood, "established", 1.0),)
    assert cast.claim.posterior[CLAIMED] > fresh_claim().posterior[CLAIMED]
    assert cast.pair == rl.Pair(DRAWER, 1, votes=1, agreed=1)


def test_a_new_accounts_vote_is_recorded_but_not_counted() -> None:
    cast = cast_vote(fresh_claim(), rl.Voter(1), rl.Pair(DRAWER, 1), rl.Drawer(DRAWER), 7, S)
    assert not cast.counted
    assert cast.claim.posterior == fresh_claim().posterior


def test_a_second_vote_by_the_same_voter_is_refused() -> None:
    voter, pair, drawer = trusted_voter(1, S), rl.Pair(DRAWER, 1), rl.Drawer(DRAWER)
    once = cast_vote(fresh_claim(), voter, pair, drawer, 7, S)
    with pytest.raises(cs.VoteRefused) as refused:
        cast_vote(once.claim, voter, once.pair, drawer, 7, S)
    assert refused.value.code == "already_voted"


def test_settling_judges_every_vote_pays_the_drawer_and_keeps_a_sure_claim_as_gold() -> None:
    claim, voters = vote_until_decided([7] * 10)
    assert claim.outcome is cs.Outcome.VERIFIED
    settled = settle(claim, voters, rl.Drawer(DRAWER), 3, 0.9, S)
    assert [v.settled for v in settled.voters] == [1] * len(claim.votes)
    assert [v.lost for v in settled.voters] == [0] * len(claim.votes)
    n = len(claim.votes)
    assert settled.drawer == rl.Drawer(DRAWER, settled=1, verified=1, votes=n, confirmed=n)
    assert settled.event is not None
    assert (settled.event.round_id, settled.event.outcome, settled.event.label) == (
        3,
        cs.Outcome.VERIFIED,
        CLAIMED,
    )
    assert settled.event.votes == tuple((v.voter_id, v.answer, v.counted) for v in claim.votes)
    assert settled.points == drawer_points(settled.event, S) > 0
    assert settled.gold_label == (CLAIMED if cs.usable_as_gold(claim, S) else None)


def test_a_disputed_claim_changes_nothing_until_an_admin_decides() -> None:
    claim = cs.dispute(fresh_claim())
    assert settle(claim, {}, rl.Drawer(DRAWER), 1, 0.9, S) == settle(
        claim, {}, rl.Drawer(DRAWER), 1, 0.9, S, by_admin=True
    )
    nothing = settle(claim, {}, rl.Drawer(DRAWER), 1, 0.9, S)
    assert (nothing.voters, nothing.drawer, nothing.event, nothing.points) == ((), None, None, 0)
    decided = settle(cs.admin_decide(claim, MODEL), {}, rl.Drawer(DRAWER), 1, 0.9, S, True)
    assert decided.event is not None and decided.event.by_admin
    assert decided.drawer == rl.Drawer(DRAWER, settled=1, verified=0)


def test_a_pending_claim_cannot_be_settled() -> None:
    with pytest.raises(ValueError, match="not settled"):
        settle(fresh_claim(), {}, rl.Drawer(DRAWER), 1, 0.9, S)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([CLAIMED, CLAIMED, MODEL, 3, 10]), min_size=1, max_size=12))
def test_settling_counts_each_vote_once_against_the_settled_label(answers: list[int]) -> None:
    claim, voters = vote_until_decided(answers)
    if claim.pending or claim.outcome is cs.Outcome.DISPUTED:
        return
    settled = settle(claim, voters, rl.Drawer(DRAWER, 4, 2), 1, 0.5, S)
    assert claim.label is not None
    by_id = {v.player_id: v for v in settled.voters}
    assert set(by_id) == {v.voter_id for v in claim.votes}
    for vote in claim.votes:
        before, after = voters[vote.voter_id], by_id[vote.voter_id]
        assert after.settled == before.settled + 1
        assert after.lost == before.lost + (vote.answer != claim.label)
        assert after.confusion == before.confusion  # only gold changes accuracy
    verified = claim.outcome is cs.Outcome.VERIFIED
    counted = [v for v in claim.votes if v.counted]
    confirmed = sum(v.answer == CLAIMED for v in counted)
    refuted = not verified and confirmed > 0
    assert settled.drawer == rl.Drawer(DRAWER, 5, 2 + verified, len(counted), confirmed, refuted)
    assert (settled.gold_label is not None) == cs.usable_as_gold(claim, S)


def test_a_gold_answer_counts_in_the_voters_confusion_and_the_score_log() -> None:
    answered = answer_gold(rl.Voter(5), truth=4, answer=9, round_id=2, s=S)
    assert answered.voter.gold_total == 1 and answered.voter.gold_correct == 0
    assert answered.event == GoldAnswered(1, 2, 5, 4, 9)


def test_a_gold_answer_says_whether_it_was_right_and_what_it_earned() -> None:
    right = answer_gold(rl.Voter(5), truth=4, answer=4, round_id=2, s=S)
    wrong = answer_gold(rl.Voter(5), truth=4, answer=9, round_id=2, s=S)
    assert (right.right, right.points) == (True, S.scoring.gold_correct_points)
    assert (wrong.right, wrong.points) == (False, -S.scoring.gold_miss_penalty)


def test_the_streak_counts_gold_answered_right_in_a_row_and_a_miss_resets_it() -> None:
    voter, streaks = rl.Voter(5), []
    for answer in [4, 4, 4, 9, 4, 4]:
        voter = answer_gold(voter, truth=4, answer=answer, round_id=2, s=S).voter
        streaks.append(voter.gold_streak)
    assert streaks == [1, 2, 3, 0, 1, 2]
    # The streak is part of the stored record.
    assert rl.Voter.from_dict(voter.to_dict()).gold_streak == 2


def test_warm_up_progress_counts_every_gold_answer_up_to_done() -> None:
    needed = S.gold.warmup_answers
    voter, progress = rl.Voter(5), []
    assert warmup(voter, S) == Warmup(0, needed)
    for i in range(needed + 1):
        answered = answer_gold(voter, truth=4, answer=4 if i % 2 else 9, round_id=2, s=S)
        progress.append(answered.warmup)
        voter = answered.voter
    # Right or wrong, each answer counts; the answer that ends warm-up says so; after it, none.
    assert progress == [Warmup(n, needed) for n in range(1, needed + 1)] + [None]
    assert warmup(voter, S) is None and rl.role(voter, S) is not rl.Role.WARMUP


def test_a_moderator_has_no_warm_up() -> None:
    assert warmup(rl.Voter(5, moderator=True), S) is None


def test_taking_a_player_out_of_play_voids_their_votes_and_disputes_their_claims() -> None:
    claim, _ = vote_until_decided([7])
    drawn = cs.new_claim(2, 1, 3, 5, 0.8, S)
    banned = moderate(1, rl.Status.BANNED, [claim], [drawn], S)
    assert out_of_play(banned.status)
    assert [v.counted for v in banned.voided[0].votes] == [False]
    assert banned.voided[0].posterior == claim.prior
    assert [c.outcome for c in banned.disputed] == [cs.Outcome.DISPUTED]


def test_reinstating_restores_play_but_touches_no_claim() -> None:
    claim, _ = vote_until_decided([7])
    reinstated = moderate(1, rl.Status.ACTIVE, [claim], [fresh_claim()], S)
    assert not out_of_play(reinstated.status)
    assert (reinstated.voided, reinstated.disputed) == ((), ())


def test_the_model_is_fooled_when_it_reads_another_digit_than_claimed() -> None:
    assert cs.fooled(7, 1) and cs.submission_outcome(7, 1) == "pending"
    assert not cs.fooled(7, 7) and cs.submission_outcome(7, 7) == "model_won"


@pytest.mark.parametrize(
    ("state", "target"),
    [
        (RoundState.OPEN, RoundState.CLOSING),
        (RoundState.CLOSING, RoundState.CLOSED),
        (RoundState.SCHEDULED, RoundState.CLOSED),
        (RoundState.CLOSED, RoundState.CLOSED),  # not legal: `transition` says why
    ],
)
def test_closing_a_round_moves_it_one_step_towards_closed(
    state: RoundState, target: RoundState
) -> None:
    assert closes_to(state) is target
