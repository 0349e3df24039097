"""Reliability from gold only, and the collusion defences that can only remove trust."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rules_helpers import trusted_voter

from game_rules import reliability as rl
from game_rules.answers import ANSWERS, NOT_A_DIGIT, BadAnswer, format_answer, parse_answer
from server.config import default_rules

S = default_rules()


def test_a_new_account_must_answer_gold_before_it_counts() -> None:
    voter = rl.Voter(1)
    assert rl.role(voter, S) is rl.Role.WARMUP
    evidence = rl.assess_vote(voter, rl.Pair(9, 1), rl.Drawer(9), 3, S)
    assert not evidence.counts and evidence.reason == "new_account"
    assert evidence.likelihood == (1 / ANSWERS,) * ANSWERS


def test_gold_answers_move_accuracy_and_crowd_agreement_does_not() -> None:
    voter = rl.Voter(1)
    before = rl.accuracy(voter, S)
    right = rl.record_gold(voter, 4, 4)
    wrong = rl.record_gold(voter, 4, 9)
    assert rl.accuracy(right, S) > before > rl.accuracy(wrong, S)
    agreeing = voter
    for _ in range(50):
        agreeing = rl.record_settled_vote(agreeing, won=True)
    assert rl.accuracy(agreeing, S) == before


def test_a_random_clicker_never_becomes_trusted() -> None:
    voter = rl.Voter(1)
    for i in range(200):
        voter = rl.record_gold(voter, i % 10, (i * 7 + 3) % 11)
    assert rl.role(voter, S) is rl.Role.GOLD_ONLY


def test_the_confusion_estimate_learns_how_a_voter_errs() -> None:
    # Reads every 4 as a 9, otherwise perfect.
    voter = rl.Voter(1)
    for i in range(100):
        truth = i % 10
        voter = rl.record_gold(voter, truth, 9 if truth == 4 else truth)
    says_nine = rl.likelihood(voter, 9, S)
    says_four = rl.likelihood(voter, 4, S)
    # "9" from this voter barely separates a 9 from a 4, but strongly rules out a 3...
    assert says_nine[9] / says_nine[4] < 2.5
    assert says_nine[9] / says_nine[3] > 9
    # ...while the one-number model (too little gold yet) would treat 4 and 3 alike.
    fresh = rl.likelihood(rl.Voter(1), 9, S)
    assert fresh[4] == fresh[3]
    assert says_four[4] / says_four[9] > 9  # and their "4" is strong evidence


@given(
    st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), max_size=120),
    st.integers(0, 10),
)
def test_no_vote_moves_odds_beyond_the_cap(gold: list[tuple[int, int]], answer: int) -> None:
    voter = rl.Voter(1)
    for truth, given_answer in gold:
        voter = rl.record_gold(voter, truth, given_answer)
    row = rl.likelihood(voter, answer, S)
    assert len(row) == ANSWERS and all(p > 0 for p in row)
    cap = S.reliability.max_likelihood_ratio
    assert max(row) / min(row) <= cap * (1 + 1e-9)


def test_standing_suspends_a_ring_like_record_but_not_an_honest_one() -> None:
    honest = trusted_voter(1, S, gold_right=40)
    ring = trusted_voter(2, S, gold_right=40)
    for i in range(40):
        honest = rl.record_settled_vote(honest, won=i % 20 != 0)  # 5% losses
        lost = i % 3 == 0  # a third of the votes lost, always together
        ring = rl.record_settled_vote(ring, won=not lost, lost_together=lost)
    assert rl.role(honest, S) is rl.Role.TRUSTED
    assert rl.role(ring, S) is rl.Role.PROBATION
    assert rl.assess_vote(ring, rl.Pair(7, 2), rl.Drawer(7), 1, S).reason == "standing"


def test_a_pair_that_agrees_far_more_than_the_crowd_stops_counting_for_that_drawer() -> None:
    voter = trusted_voter(1, S)
    cheater = rl.Drawer(7, settled=20, verified=2)  # the crowd rejects most of their claims
    pair = rl.Pair(7, 1)
    for _ in range(3):
        pair = rl.record_pair_vote(pair, claimed=5, answer=5)
    assert rl.assess_vote(voter, pair, cheater, 5, S).reason == "cluster"
    # The same voter still counts on an honest drawer's claims, and on a fresh pair.
    assert rl.assess_vote(voter, rl.Pair(7, 1), cheater, 5, S).counts
    honest = rl.Drawer(8, settled=20, verified=20)
    good_pair = rl.Pair(8, 1, votes=3, agreed=3)
    assert rl.assess_vote(voter, good_pair, honest, 5, S).counts


def test_quarantined_and_banned_voters_do_not_count() -> None:
    voter = trusted_voter(1, S)
    for status in (rl.Status.QUARANTINED, rl.Status.BANNED):
        out = rl.set_status(voter, status)
        assert rl.role(out, S) is rl.Role.OUT
        assert not rl.assess_vote(out, rl.Pair(9, 1), rl.Drawer(9), 3, S).counts


def test_the_drawer_prior_follows_the_settled_history() -> None:
    new = rl.Drawer(1)
    liar = rl.Drawer(1, settled=30, verified=3)
    honest = rl.Drawer(1, settled=30, verified=30)
    assert rl.drawer_prior(liar, S) < rl.drawer_prior(new, S) < rl.drawer_prior(honest, S)


def test_answers_parse_from_the_protocol_form() -> None:
    assert parse_answer(7) == 7 and parse_answer("x") == NOT_A_DIGIT
    assert format_answer(NOT_A_DIGIT) == "x" and format_answer(3) == 3
    for bad in (10, -1, "7", True, 3.0, None, "X"):
        with pytest.raises(BadAnswer):
            parse_answer(bad)
