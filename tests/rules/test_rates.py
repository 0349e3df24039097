"""A rate is shown only with enough attempts, and always with its Wilson 95% interval."""

from __future__ import annotations

import pytest

from game_rules.rates import shown_rate, wilson_interval
from game_rules.settings import with_changes
from server.config import default_rules

S = default_rules()


def test_too_few_attempts_show_no_rate() -> None:
    assert shown_rate(1, S.chart.min_attempts - 1, S) is None
    shown = shown_rate(3, S.chart.min_attempts, S)
    assert shown is not None and shown.trials == S.chart.min_attempts


def test_one_attempt_is_no_evidence_even_when_shown() -> None:
    one = with_changes(S, chart={"min_attempts": 1})
    fooled, held = shown_rate(1, 1, one), shown_rate(0, 1, one)
    assert fooled is not None and held is not None
    # 100% and 0% on one attempt: the intervals overlap, so no "harder to fool" can be read.
    assert fooled.low < held.high
    assert (fooled.high, held.low) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (20, 100, 0.1334, 0.2888)],
)
def test_the_wilson_interval_matches_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_the_interval_holds_the_rate_and_stays_in_0_1() -> None:
    for trials in (1, 7, 30, 1000):
        for successes in range(0, trials + 1, max(1, trials // 7)):
            low, high = wilson_interval(successes, trials)
            assert 0.0 <= low <= successes / trials <= high <= 1.0
