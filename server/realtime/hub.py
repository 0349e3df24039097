"""Connections and broadcasts.

Each connection has a bounded send queue drained by its own sender task, so nothing else ever
awaits a client: a reply or a broadcast is a `put_nowait`. A client that reads too slowly fills
its queue and is closed with 1013; everyone else is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket

from server.prometheus import Metrics
from server.realtime.limits import TRY_AGAIN_LATER
from server.realtime.shared_limits import SharedLimits

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 30.0  # how long a close frame may wait behind a client that does not read


class Connection:
    def __init__(self, websocket: WebSocket, queue_size: int, metrics: Metrics) -> None:
        self.websocket = websocket
        self.metrics = metrics
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._sender: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self.close_code: int | None = None  # set once the server decided to close

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop())

    def send(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        if self.close_code is not None:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close(TRY_AGAIN_LATER, "too far behind reading; reconnect")

    def close(self, code: int, reason: str) -> None:
        """Stop sending and close with `code`; safe to call more than once."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.metrics.disconnects.labels(str(code)).inc()
        log.info("closing connection", extra={"code": code, "reason": reason})
        self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        # The close frame queues behind whatever the client has not read yet.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_TIMEOUT)

    async def _send_loop(self) -> None:
        try:
            while True:
                await self.websocket.send_text(await self._queue.get())
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away; the reader notices and cleans up
            return

    async def finish(self) -> None:
        """Wait for a pending close, or stop the sender of a connection the client ended."""
        if self._closer is not None:
            await self._closer
        elif self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender


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
        text = json.dumps(message, separators=(",", ":"))
        for connection in list(self.connections):
            connection.send_text(text)

    async def close_all(self, code: int, reason: str) -> None:
        connections = list(self.connections)
        for connection in connections:
            connection.close(code, reason)
        await asyncio.gather(*(c.finish() for c in connections), return_exceptions=True)
