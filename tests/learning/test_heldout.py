"""The held-out rule: fixed, reproducible, about one drawing in five (the packaged rules' 20%)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from game_rules.heldout import is_held_out, percent_of
from server.config import default_rules

PERCENT = 20  # the packaged rules' retrain.heldout_fraction, as the rule takes it


def test_the_same_attempt_always_gets_the_same_answer() -> None:
    first = [is_held_out(i, PERCENT) for i in range(1000)]
    assert [is_held_out(i, PERCENT) for i in range(1000)] == first


def test_the_rule_does_not_depend_on_the_process() -> None:
    # Python's own hash() is salted per process; the rule must not be.
    script = (
        "from game_rules.heldout import is_held_out; "
        "print([is_held_out(i, 20) for i in range(200)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() == str([is_held_out(i, PERCENT) for i in range(200)])


def test_the_rule_is_pinned() -> None:
    # Changing the rule would move drawings between training and held-out sets of past rounds.
    assert [i for i in range(1, 31) if is_held_out(i, PERCENT)] == [2, 3, 12, 16, 21, 30]


def test_about_one_in_five_is_held_out() -> None:
    held = sum(is_held_out(i, PERCENT) for i in range(20_000))
    assert percent_of(default_rules().retrain.heldout_fraction) == PERCENT
    assert 0.18 < held / 20_000 < 0.22


def test_a_larger_percent_only_adds_drawings() -> None:
    ids = range(2000)
    at_20 = {i for i in ids if is_held_out(i, 20)}
    at_30 = {i for i in ids if is_held_out(i, 30)}
    assert at_20 < at_30
    assert not any(is_held_out(i, 0) for i in ids)
    assert all(is_held_out(i, 100) for i in ids)


@pytest.mark.parametrize("percent", [-1, 101])
def test_a_percent_outside_0_to_100_is_refused(percent: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        is_held_out(1, percent)
