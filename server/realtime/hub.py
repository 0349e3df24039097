"""Connections and broadcasts.

A reply or a broadcast is written to the connection's socket buffer at once (wire.py): nothing
ever awaits a client. A client that reads too slowly lets its replies pile up there, and past
`Limits.send_buffer_bytes` it is closed with 1013; everyone else is unaffected.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from server.prometheus import Metrics
from server.realtime.limits import TRY_AGAIN_LATER
from server.realtime.shared_limits import SharedLimits
from server.realtime.wire import Channel

log = logging.getLogger(__name__)
T = TypeVar("T")


class Connection:
    def __init__(self, channel: Channel, metrics: Metrics) -> None:
        self.channel = channel
        self.metrics = metrics
        self.close_code: int | None = None  # set once the server decided to close

    def send(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        if self.close_code is not None or self.channel.closing:
            return
        if not self.channel.send_text(text):
            self.close(TRY_AGAIN_LATER, "too far behind reading; reconnect")

    def close(self, code: int, reason: str) -> None:
        """Close with `code` after what the client has not read yet; safe to call more than once."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.metrics.disconnects.labels(str(code)).inc()
        log.info("closing connection", extra={"code": code, "reason": reason})
        self.channel.close(code, reason)

    async def finish(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self.channel.closed)


PUSH_TURN = 64  # connections written to in one turn of the event loop


async def in_turns(items: Sequence[T]) -> AsyncIterator[Sequence[T]]:
    """`items` in slices of PUSH_TURN, the event loop free to run between them. A push written
    to every connection at once stopped the loop for ~20 ms at 800 connections (a system call
    each), once a second, and every live guess that arrived meanwhile waited for it."""
    for start in range(0, len(items), PUSH_TURN):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + PUSH_TURN]


class Hub:
    """Every live connection, for pushes to all of them."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.connections: set[Connection] = set()
        self.shared_limits = SharedLimits()  # per player and per address, across connections

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.metrics.connections.set(len(self.connections))

    def remove(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self.metrics.connections.set(len(self.connections))

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send `message` to every connection now (for the rare messages that must go out before
        anything else: a round's change); the periodic pushes use `push`."""
        text = json.dumps(message, separators=(",", ":"))
        for connection in list(self.connections):
            connection.send_text(text)

    async def push(self, message: dict[str, Any], current: Callable[[], bool]) -> None:
        """`broadcast`, in turns (`in_turns`); it stops early once `current()` is false (a newer
        message has made this one stale)."""
        text = json.dumps(message, separators=(",", ":"))
        async for connections in in_turns(list(self.connections)):
            if not current():
                return
            for connection in connections:
                connection.send_text(text)

    async def close_all(self, code: int, reason: str) -> None:
        connections = list(self.connections)
        for connection in connections:
            connection.close(code, reason)
        await asyncio.gather(*(c.finish() for c in connections), return_exceptions=True)
