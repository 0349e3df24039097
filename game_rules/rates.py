"""Rates measured on few attempts, honestly: a rate is shown only after `[chart] min_attempts`
attempts, and always with its Wilson score interval (95%), which stays sensible at 0 and at
small counts where the normal approximation does not."""

from __future__ import annotations

import math
from dataclasses import dataclass

from game_rules.settings import RuleSettings

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Rate:
    rate: float
    low: float
    high: float
    trials: int


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of `successes / trials` (trials > 0)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, not {successes}/{trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # Exact at the ends (the formula gives 0 and 1 there, give or take a rounding error).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def shown_rate(successes: int, trials: int, s: RuleSettings) -> Rate | None:
    """The rate with its interval, or None while there are too few trials to show one."""
    if trials < s.chart.min_attempts:
        return None
    low, high = wilson_interval(successes, trials)
    return Rate(successes / trials, low, high, trials)
