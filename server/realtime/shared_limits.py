"""Limits shared across connections: per player, per client address, and overall.

Per-connection buckets (limits.py) stop one noisy socket, not one person: a player's token on
ten connections had ten times the allowance. These buckets are keyed by who is asking (the
player, or the client address for joins and spectators) and shared by all of that key's
connections to this server process. Account creation is limited per address and overall by the
game rules (`[accounts]` in game_rules/defaults.toml), so making accounts costs time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from game_rules.settings import RuleSettings
from server.realtime.limits import Limits, TokenBucket


@dataclass(frozen=True)
class Rate:
    burst: float
    per_second: float


PER_ADDRESS_SPECTATORS = Rate(30, 2)  # spectator hellos per client address


def player_rates(limits: Limits) -> dict[str, Rate]:
    """Each kind of request's allowance per player: a connection's (a session reads it once,
    not per message: a live guess is checked against it ten times a second)."""
    tasks = Rate(limits.tasks_burst, limits.tasks_per_second)
    return {
        "predict": Rate(limits.predict_burst, limits.predict_per_second),
        "submit": Rate(limits.submit_burst, limits.submit_per_second),
        "explain": Rate(limits.explain_burst, limits.explain_per_second),
        "task": tasks,
        "vote": tasks,
    }


class SharedLimits:
    """Token buckets by key, the least recently used forgotten past `max_keys` (a forgotten key
    starts full again, so memory stays bounded under a flood of addresses)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, object], TokenBucket] = OrderedDict()

    def wait(self, kind: str, key: object, rate: Rate) -> float | None:
        """Spend a token of `kind` for `key`: None if allowed, else seconds until the next."""
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            bucket = self._buckets[(kind, key)] = TokenBucket(rate.burst, rate.per_second)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end((kind, key))
        return None if bucket.take() else bucket.wait_seconds()

    def player(self, kind: str, player_id: int, rate: Rate) -> float | None:
        """A `predict`, `submit`, `explain`, `task` or `vote` by `player_id`, on any connection: one
        player gets what one connection gets, however many they open (`player_rates`)."""
        return self.wait(kind, player_id, rate)

    def spectator(self, address: str) -> float | None:
        return self.wait("spectate", address, PER_ADDRESS_SPECTATORS)

    def join(self, address: str, s: RuleSettings) -> float | None:
        """A new account from `address`: within the per-address and the overall allowance?"""
        a = s.accounts
        per_address = Rate(a.per_address_burst, a.per_address_per_hour / 3600)
        overall = Rate(a.overall_burst, a.overall_per_minute / 60)
        return self.wait("join", address, per_address) or self.wait("join", "*", overall)
