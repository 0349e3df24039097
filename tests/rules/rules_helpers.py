"""Small builders shared by the rules tests."""

from __future__ import annotations

from game_rules import reliability as rl
from game_rules.settings import RuleSettings


def trusted_voter(player_id: int, s: RuleSettings, gold_right: int = 30) -> rl.Voter:
    """An established voter: `gold_right` gold digits answered correctly over more than the
    established span, a third of them hard gold (the served model read something else)."""
    voter = rl.Voter(player_id)
    step = s.trust.established_span_seconds / max(gold_right - 1, 1)
    for i in range(gold_right):
        truth = i % 10
        model = (truth + 1) % 10 if i % 3 == 0 else truth
        voter = rl.record_gold(voter, truth, truth, model, at=i * step)
    assert rl.role(voter, s) is rl.Role.TRUSTED
    return voter


def new_voter(player_id: int, s: RuleSettings, gold_right: int = 30) -> rl.Voter:
    """A fresh account that answered `gold_right` gold digits correctly within one minute."""
    voter = rl.Voter(player_id)
    for i in range(gold_right):
        voter = rl.record_gold(voter, i % 10, i % 10, at=i * 60.0 / gold_right)
    return voter


def counted(player_id: int, drawer_id: int, answer: int, s: RuleSettings) -> rl.Evidence:
    """The evidence of a trusted voter with a clean record on this drawer."""
    return rl.assess_vote(
        trusted_voter(player_id, s), rl.Pair(drawer_id, player_id), rl.Drawer(drawer_id), answer, s
    )
