"""Per-connection limits: token buckets for rate limiting, caps on connections, and the knobs a
deployment can turn."""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from dataclasses import dataclass

POLICY_VIOLATION = 1008  # websocket close code: the client broke a rule (the reason says which)
TRY_AGAIN_LATER = 1013  # websocket close code: the server is full or the client fell behind


class TokenBucket:
    """`capacity` requests at once, refilled at `rate` per second."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> bool:
        """Spend one token if there is one. (The refill written out: this runs three times for
        every live guess.)"""
        now = time.monotonic()
        tokens = self.tokens + (now - self.updated) * self.rate
        if tokens > self.capacity:
            tokens = self.capacity
        self.updated = now
        if tokens >= 1:
            self.tokens = tokens - 1
            return True
        self.tokens = tokens
        return False

    def wait_seconds(self) -> float:
        """How long until the next token."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


@dataclass(frozen=True)
class Limits:
    # Any message at all (bad ones included), then the expensive ones on top.
    messages_burst: float = 100
    messages_per_second: float = 50
    predict_burst: float = 30
    predict_per_second: float = 20  # the client streams at ~10 Hz; this leaves room for jitter
    submit_burst: float = 5
    submit_per_second: float = 1
    # Explanations (where the model looked) cost ~150 guesses each: per player, across their
    # connections (shared_limits.py).
    explain_burst: float = 3
    explain_per_second: float = 0.5
    # Task requests and votes, each, per player across their connections (shared_limits.py).
    tasks_burst: float = 20
    tasks_per_second: float = 4
    # Bytes of replies waiting for a client that reads too slowly, beyond what the kernel's socket
    # buffer holds; past this it is closed with 1013.
    send_buffer_bytes: int = 256 * 1024
    # Consecutive `rate_limited` replies before the connection is closed with 1008.
    max_strikes: int = 50
    # Messages larger than this close the connection with 1009 (server/realtime/wire.py).
    max_message_bytes: int = 64 * 1024
    # A connection that has not said `hello` this long after opening is closed with 1008.
    hello_seconds: float = 5.0
    # Open websockets: past `max_connections` in all a new one is closed with 1013, past
    # `max_connections_per_address` from one client address with 1008. Loopback and private
    # addresses count only toward the total: they are benchmarks, tests, or a reverse proxy
    # (compose's nginx) that every player seems to come from. uvicorn gives the real addresses,
    # which are capped, when it trusts the proxy's X-Forwarded-For ($FORWARDED_ALLOW_IPS).
    max_connections: int = 4096
    max_connections_per_address: int = 64
    uncapped_networks: tuple[str, ...] = (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    )

    def buckets(self) -> dict[str, TokenBucket]:
        return {
            "message": TokenBucket(self.messages_burst, self.messages_per_second),
            "predict": TokenBucket(self.predict_burst, self.predict_per_second),
            "submit": TokenBucket(self.submit_burst, self.submit_per_second),
        }


class ConnectionCaps:
    """Counts open websockets, per client address and in total, and refuses those over a cap."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.by_address: Counter[str] = Counter()
        self._uncapped = [ipaddress.ip_network(net) for net in limits.uncapped_networks]

    def admit(self, address: str) -> tuple[int, str] | None:
        """Count a new connection in, or say why not: (close code, reason)."""
        if self.total >= self.limits.max_connections:
            return TRY_AGAIN_LATER, "the server is full; try again in a minute"
        crowded = self.by_address[address] >= self.limits.max_connections_per_address
        if crowded and self._capped(address):
            return POLICY_VIOLATION, "too many connections from your address; close some tabs"
        self.total += 1
        self.by_address[address] += 1
        return None

    def _capped(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # not an IP (a Unix socket, a test client): one more address
            return True
        return not any(ip in network for network in self._uncapped)

    def release(self, address: str) -> None:
        """Count an admitted connection out."""
        self.total -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]
