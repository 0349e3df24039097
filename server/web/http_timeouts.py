"""uvicorn's HTTP protocol with a deadline on reading a request's headers.

uvicorn closes a connection idle between requests (`timeout_keep_alive`), but a client that sends
its headers a byte at a time, or connects and sends nothing, is held open forever (issue 12: 65 s
and counting). Here each request's headers, the websocket upgrade's included, must be complete
within HEADER_SECONDS of the connection or of the request's first byte, or the connection is
closed. Once the headers are in, the request (or the websocket) has all the time it needs.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_SECONDS = 10.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` (what uvicorn picks by default here) that times the headers out."""

    header_seconds = HEADER_SECONDS
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
