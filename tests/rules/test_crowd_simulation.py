"""The crowd simulation (issue 11, "Done when" 1): the server's own settle sequence against
colluders, model-oracle bots, an account farm and sleepers, beside two plain baselines.

Run with `-s` to see the table; `python bench/crowd.py` prints the same one.
"""

from __future__ import annotations

import pytest

from game_rules.simulation import CrowdConfig, Result, run, standard_table
from server.config import default_rules

pytestmark = pytest.mark.slow  # about a minute: eighteen simulations of 2,000 claims

MAX_FAKES_ACCEPTED = {
    "15% colluders": 0.005,
    "30% colluders": 0.02,
    "50% colluders": 0.08,
    "30% oracles": 0.0,
    "farm k=5": 0.0,
    "20% sleepers": 0.02,
}


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], Result]:
    text, results = standard_table(default_rules(), seed=0)
    print("\n" + text)
    return results


@pytest.mark.parametrize(("scenario", "max_fakes"), MAX_FAKES_ACCEPTED.items())
def test_our_rules_keep_fakes_out_without_rejecting_true_claims(
    results: dict[tuple[str, str], Result], scenario: str, max_fakes: float
) -> None:
    ours = results[(scenario, "ours")]
    assert ours.fakes > 500 and ours.trues > 500
    assert ours.unfinished == 0
    assert ours.fake_accept_rate <= max_fakes
    assert ours.true_reject_rate <= 0.02
    assert ours.votes_per_claim <= 5.0


@pytest.mark.parametrize("scenario", MAX_FAKES_ACCEPTED)
def test_our_rules_beat_both_baselines_on_fakes(
    results: dict[tuple[str, str], Result], scenario: str
) -> None:
    ours = results[(scenario, "ours")].fake_accept_rate
    assert ours < results[(scenario, "dynabench")].fake_accept_rate
    assert ours < results[(scenario, "majority5")].fake_accept_rate


def test_the_simulation_is_seeded() -> None:
    cfg = CrowdConfig(claims=150, seed=4)
    rules = default_rules()
    assert run("ours", cfg, rules) == run("ours", cfg, rules)
    with pytest.raises(ValueError, match="policy"):
        run("vibes", cfg, rules)
