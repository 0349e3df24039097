"""Per-connection limits: token buckets for rate limiting, and the knobs a deployment can turn."""

from __future__ import annotations

import time
from dataclasses import dataclass


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
        """Spend one token if there is one."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
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
    # Task requests and votes, each, per player across their connections (shared_limits.py).
    tasks_burst: float = 20
    tasks_per_second: float = 4
    # Replies waiting for a client that reads too slowly; past this it is closed with 1013.
    send_queue: int = 256
    # Consecutive `rate_limited` replies before the connection is closed with 1008.
    max_strikes: int = 50
    # Frames larger than this close the connection with 1009 (uvicorn enforces it).
    max_message_bytes: int = 64 * 1024

    def buckets(self) -> dict[str, TokenBucket]:
        return {
            "message": TokenBucket(self.messages_burst, self.messages_per_second),
            "predict": TokenBucket(self.predict_burst, self.predict_per_second),
            "submit": TokenBucket(self.submit_burst, self.submit_per_second),
        }
