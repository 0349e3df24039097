"""The crowd simulation (issue 4, "Done when" 2): the rules against fakes, clickers and sybils.

Run with `-s` to see the table; `python bench/crowd.py` prints the same one.
"""

from __future__ import annotations

import pytest

from game_rules.simulation import CrowdConfig, Result, run, standard_table
from server.config import default_rules

pytestmark = pytest.mark.slow  # about ten seconds: six simulations of 2,000 claims


@pytest.fixture(scope="module")
def results() -> dict[tuple[float, str], Result]:
    text, results = standard_table(default_rules(), seed=0)
    print("\n" + text)
    return results


@pytest.mark.parametrize(("sybils", "max_fakes"), [(0.15, 0.01), (0.30, 0.03)])
def test_our_rules_keep_fakes_out_without_rejecting_true_claims(
    results: dict[tuple[float, str], Result], sybils: float, max_fakes: float
) -> None:
    ours = results[(sybils, "ours")]
    assert ours.fakes > 500 and ours.trues > 500
    assert ours.unfinished == 0
    assert ours.fake_accept_rate <= max_fakes
    assert ours.true_reject_rate <= 0.05
    assert ours.votes_per_claim <= 5.0


@pytest.mark.parametrize("sybils", [0.15, 0.30])
def test_our_rules_beat_both_baselines_on_fakes(
    results: dict[tuple[float, str], Result], sybils: float
) -> None:
    ours = results[(sybils, "ours")].fake_accept_rate
    assert ours < results[(sybils, "dynabench")].fake_accept_rate
    assert ours < results[(sybils, "majority5")].fake_accept_rate


def test_the_simulation_is_seeded() -> None:
    cfg = CrowdConfig(claims=150, seed=4)
    rules = default_rules()
    assert run("ours", cfg, rules) == run("ours", cfg, rules)
    with pytest.raises(ValueError, match="policy"):
        run("vibes", cfg, rules)
