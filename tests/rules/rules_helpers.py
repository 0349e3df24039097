"""Small builders shared by the rules tests."""

from __future__ import annotations

from game_rules import reliability as rl
from game_rules.settings import RuleSettings


def trusted_voter(player_id: int, s: RuleSettings, gold_right: int = 20) -> rl.Voter:
    """A voter who answered `gold_right` gold digits correctly (and nothing else)."""
    voter = rl.Voter(player_id)
    for i in range(gold_right):
        voter = rl.record_gold(voter, i % 10, i % 10)
    assert rl.role(voter, s) is rl.Role.TRUSTED
    return voter


def counted(player_id: int, drawer_id: int, answer: int, s: RuleSettings) -> rl.Evidence:
    """The evidence of a trusted voter with a clean record on this drawer."""
    return rl.assess_vote(
        trusted_voter(player_id, s), rl.Pair(drawer_id, player_id), rl.Drawer(drawer_id), answer, s
    )
