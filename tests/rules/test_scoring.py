"""Scores are a fold over stored events: rebuilt exactly, replay-proof, and ranked uniquely."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from game_rules.consensus import Outcome
from game_rules.leaderboard import board, ranked
from game_rules.scoring import (
    AttemptMade,
    ClaimSettled,
    Event,
    EventRefused,
    GoldAnswered,
    Scores,
    Tally,
    awards,
    fool_points,
)
from server.config import default_rules

S = default_rules()
FINAL = [o for o in Outcome if o is not Outcome.DISPUTED]


@st.composite
def event_logs(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    for seq in range(1, draw(st.integers(0, 40)) + 1):
        kind = draw(st.sampled_from(["attempt", "claim", "gold"]))
        round_id = draw(st.integers(1, 3))
        if kind == "attempt":
            events.append(
                AttemptMade(
                    seq,
                    round_id,
                    draw(st.integers(1, 8)),
                    draw(st.integers(0, 9)),
                    draw(st.integers(0, 9)),
                )
            )
        elif kind == "gold":
            events.append(
                GoldAnswered(
                    seq,
                    round_id,
                    draw(st.integers(1, 8)),
                    draw(st.integers(0, 10)),
                    draw(st.integers(0, 10)),
                )
            )
        else:
            drawer = draw(st.integers(1, 8))
            others = [v for v in range(1, 9) if v != drawer]
            voters = draw(st.lists(st.sampled_from(others), unique=True, max_size=6))
            votes = tuple((v, draw(st.integers(0, 10)), draw(st.booleans())) for v in voters)
            events.append(
                ClaimSettled(
                    seq,
                    round_id,
                    seq,
                    drawer,
                    draw(st.sampled_from(FINAL)),
                    draw(st.integers(0, 10)),
                    draw(st.floats(0, 1)),
                    votes,
                )
            )
    return events


@settings(max_examples=60, deadline=None)
@given(event_logs(), st.data())
def test_scores_rebuilt_from_events_equal_the_live_scores(
    events: list[Event], data: st.DataObject
) -> None:
    # Live: applied one by one as they commit, with a snapshot saved to JSON and reloaded at some
    # point (a restart), and replays / stale events thrown at it along the way.
    split = data.draw(st.integers(0, len(events)))
    live = Scores()
    for event in events[:split]:
        live.apply(event, S)
    live = Scores.from_dict(json.loads(json.dumps(live.to_dict())))
    for event in events[split:]:
        live.apply(event, S)
        with pytest.raises(EventRefused):
            live.apply(event, S)  # a replay changes nothing
    assert live == Scores.rebuild(events, S)
    # And every board equals the plain sum of the awards, the way a database column would.
    totals: dict[int, int] = {}
    for event in events:
        for award in awards(event, S):
            totals[award.player_id] = totals.get(award.player_id, 0) + award.points
    assert {p: t.score for p, t in live.all_time.items()} == {
        p: totals.get(p, 0) for p in live.all_time
    }


def test_a_verified_fool_pays_more_the_more_confident_the_model_was() -> None:
    assert fool_points(0.99, S) > fool_points(0.5, S) > 0
    assert fool_points(0.0, S) == S.scoring.fool_base_points


def test_one_settled_claim_pays_drawer_and_judges_counted_votes_only() -> None:
    scores = Scores()
    scores.apply(AttemptMade(1, 1, player_id=10, label=7, model_label=1), S)
    event = ClaimSettled(
        2,
        1,
        claim_id=5,
        drawer_id=10,
        outcome=Outcome.VERIFIED,
        label=7,
        model_confidence=0.9,
        votes=((1, 7, True), (2, 3, True), (3, 7, False)),
    )
    scores.apply(event, S)
    scores.apply(GoldAnswered(3, 1, player_id=2, truth=4, answer=4), S)
    assert scores.all_time[10].score == fool_points(0.9, S)
    assert scores.validators[1].score == S.scoring.validator_match_points
    assert scores.validators[2].score == (
        -S.scoring.validator_miss_penalty + S.scoring.gold_correct_points
    )
    assert 3 not in scores.validators
    assert 10 not in scores.validators
    st10 = scores.stats[10]
    assert (st10.attempts, st10.fools, st10.verified, st10.rejected) == (1, 1, 1, 0)
    assert scores.stats[2].gold_accuracy == 1.0


@pytest.mark.parametrize(
    "event",
    [
        GoldAnswered(0, 1, 1, 3, 3),  # seq must be positive
        GoldAnswered(1, 1, 1, 3, 11),  # answer out of range
        AttemptMade(1, 1, 1, 10, 3),  # a label is a digit
        ClaimSettled(1, 1, 1, 2, Outcome.DISPUTED, 3, 0.5),  # not final
        ClaimSettled(1, 1, 1, 2, Outcome.VERIFIED, 3, 1.5),  # not a probability
        ClaimSettled(1, 1, 1, 2, Outcome.VERIFIED, 3, 0.5, ((2, 3, True),)),  # drawer voted
        ClaimSettled(1, 1, 1, 2, Outcome.VERIFIED, 3, 0.5, ((4, 3, True), (4, 3, True))),
    ],
)
def test_malformed_events_are_refused_and_change_nothing(event: Event) -> None:
    scores = Scores()
    scores.apply(AttemptMade(1, 1, 1, 7, 1), S)
    before = scores.to_dict()
    with pytest.raises(EventRefused):
        scores.apply(event, S)
    assert scores.to_dict() == before


def test_out_of_order_events_are_refused() -> None:
    scores = Scores()
    scores.apply(GoldAnswered(5, 1, 1, 3, 3), S)
    with pytest.raises(EventRefused, match="replayed or out of order"):
        scores.apply(GoldAnswered(4, 1, 2, 3, 3), S)
    assert 2 not in scores.all_time


def test_ties_go_to_the_earlier_achiever_and_positions_are_unique() -> None:
    tallies = {
        1: Tally(10, reached_at=9),
        2: Tally(10, reached_at=4),
        3: Tally(12, 20),
        4: Tally(5, 1),
        5: Tally(10, reached_at=4),
    }
    rows = ranked(tallies)
    assert [r.player_id for r in rows] == [3, 2, 5, 1, 4]
    assert [r.rank for r in rows] == [1, 2, 3, 4, 5]
    view = board(tallies, top_n=2, player_id=1, neighbours=1)
    assert [r.player_id for r in view.top] == [3, 2]
    assert view.you is not None
    assert (view.you.rank, view.you.of, view.you.score) == (4, 5, 10)
    assert [r.player_id for r in view.you.neighbours] == [5, 1, 4]
    assert board(tallies, top_n=3, player_id=42).you is None
    first = board(tallies, top_n=3, player_id=3, neighbours=2).you
    assert first is not None and [r.player_id for r in first.neighbours] == [3, 2, 5]


@given(
    st.dictionaries(st.integers(1, 50), st.builds(Tally, st.integers(-20, 20), st.integers(0, 30)))
)
def test_ranks_are_a_permutation_in_score_order(tallies: dict[int, Tally]) -> None:
    rows = ranked(tallies)
    assert [r.rank for r in rows] == list(range(1, len(tallies) + 1))
    assert sorted(r.player_id for r in rows) == sorted(tallies)
    keys = [(-tallies[r.player_id].score, tallies[r.player_id].reached_at) for r in rows]
    assert keys == sorted(keys)


def test_a_round_is_won_by_fooling_not_by_validating() -> None:
    """At the default rules, a validator who answers honestly for as long as it takes a drawer
    to get one fool verified (here: 300 gold answers and 300 matching votes, all right) ends the
    round below that one fool, even one the model was barely sure of; the validation points
    still count in full on the validators' board."""
    drawer, validator, round_id = 1, 2, 1
    scores = Scores()
    seq = 0
    for task in range(300):
        seq += 1
        scores.apply(GoldAnswered(seq, round_id, validator, truth=task % 10, answer=task % 10), S)
        seq += 1
        votes = ((validator, 3, True),)
        claim = ClaimSettled(seq, round_id, seq, 99, Outcome.VERIFIED, 3, 0.5, votes)
        scores.apply(claim, S)
    seq += 1
    least_sure = ClaimSettled(seq, round_id, seq, drawer, Outcome.VERIFIED, 4, 0.1)
    scores.apply(least_sure, S)

    board = scores.rounds[round_id]
    assert board[validator].score < board[drawer].score == fool_points(0.1, S)
    assert scores.validators[validator].score == 600
    assert scores.all_time[validator].score == 600


def test_misses_still_cost_round_points_under_the_cap() -> None:
    scores = Scores()
    scores.apply(GoldAnswered(1, 1, 2, truth=4, answer=4), S)
    scores.apply(GoldAnswered(2, 1, 2, truth=4, answer=9), S)
    assert scores.rounds[1][2].score == S.scoring.gold_correct_points - S.scoring.gold_miss_penalty
