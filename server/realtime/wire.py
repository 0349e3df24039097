"""The websocket wire of `/ws`: picows, a compiled RFC 6455 implementation, in uvicorn's place.

uvicorn parses every HTTP request; when one asks for a websocket it hands the connection to the
protocol its `ws=` setting makes (app.py `uvicorn_config`). uvicorn's own would run the ASGI app,
and a message would cross the `websockets` frame parser, an ASGI receive queue, Starlette's
message dicts and two task wake-ups (one to read it, one to write the reply): about half the event
loop's time per live guess, the scarce resource at load (issue #17, README "Benchmarks"). picows
parses frames in C and calls `Channel.on_ws_frame` for each, in order, so a live guess is read,
handed to the model worker and, from the batch's callback, answered with no task wake-up at all.

This module is only the wire: the handshake (the path, the Host header as the HTTP routes check
it, the client's address as uvicorn's proxy settings give it), frames (fragments joined, size
and UTF-8 checked), flow control both ways, ping/pong and the close handshake. What a message
means is the session's (server/web/websocket.py): a `Channel` hands it every message and it answers
through `send_text` and `close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]
from starlette.datastructures import Headers
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.server import ServerState

from server.realtime.limits import TRY_AGAIN_LATER

log = logging.getLogger(__name__)
# picows logs every connection and disconnection at INFO: only its warnings are ours to see.
_picows_log = logging.getLogger("server.web.wire.picows")
_picows_log.setLevel(logging.WARNING)

PATH = b"/ws"
# A close frame waits this long behind replies a client has not read; then the socket is cut.
CLOSE_TIMEOUT = 30.0
PING_SECONDS = 20.0  # an idle connection is pinged, and cut if the pong takes as long again
CLOSE_CODES = {code.value for code in WSCloseCode}


class Session(Protocol):
    """What a channel drives (server/web/websocket.py `Session`)."""

    def received(self, message: str | bytes) -> None: ...

    def disconnected(self) -> asyncio.Future[None] | None:
        """The connection is gone: what the session still finishes (a submission being stored),
        which a stopping server waits for."""


class Channel(WSListener):
    """One websocket connection: whole messages in, text and closes out.

    `opened(channel)` runs once the handshake is done and returns the session that will get
    every message (`Session.received`, in order, called from here: no task in between) and the
    end of the connection (`Session.disconnected`)."""

    def __init__(
        self,
        address: str,
        headers: Headers,
        max_message_bytes: int,
        send_buffer_bytes: int,
        opened: Callable[[Channel], Session],
    ) -> None:
        super().__init__()
        self.address = address
        self.headers = headers
        self.max_message_bytes = max_message_bytes
        self.send_buffer_bytes = send_buffer_bytes
        self._opened = opened
        self.session: Session | None = None
        self.finishing: asyncio.Future[None] | None = None  # the session's last work
        self.transport: WSTransport | None = None
        self.closing = False
        self.close_code: int | None = None  # the code of the close frame we sent, if any
        self.closed = asyncio.get_running_loop().create_future()
        self._fragments: list[bytes] | None = None  # a message that came in several frames
        self._fragments_type = WSMsgType.TEXT
        self._fragments_size = 0
        self._reading_paused = False

    # --- picows calls these ---------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.session = self._opened(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if self.closing and kind != WSMsgType.CLOSE:
            return
        if frame.rsv1 or frame.rsv2 or frame.rsv3:  # no extension was negotiated
            self.close(WSCloseCode.PROTOCOL_ERROR.value, "reserved bits set")
            return
        if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
            if self._fragments is not None:
                self.close(
                    WSCloseCode.PROTOCOL_ERROR.value, "a message began inside a fragmented one"
                )
            elif frame.fin:
                self._deliver(kind, frame.get_payload_as_bytes())
            else:
                self._fragments, self._fragments_type, self._fragments_size = [], kind, 0
                self._add_fragment(frame)
        elif kind == WSMsgType.CONTINUATION:
            if self._fragments is None:
                self.close(
                    WSCloseCode.PROTOCOL_ERROR.value, "a continuation frame without a message"
                )
            else:
                self._add_fragment(frame)
        elif kind == WSMsgType.CLOSE:
            self._close_received(frame)
        elif kind == WSMsgType.PING:  # answered like any reply: not to a client that never reads
            if self._backed_up():
                self.close(TRY_AGAIN_LATER, "too far behind reading; reconnect")
            else:
                transport.send_pong(frame.get_payload_as_bytes())
        # A PONG needs nothing (picows reads those that answer its own pings).

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closing = True
        if not self.closed.done():
            self.closed.set_result(None)
        if self.session is not None:
            self.finishing = self.session.disconnected()

    # --- the session calls these ----------------------------------------------------------

    def send_text(self, text: str) -> bool:
        """Queue `text` for the client; False when it is not sent: the connection is closing, or
        the client reads so slowly that more than `send_buffer_bytes` wait for it (the caller
        closes it then)."""
        if self.closing or self.transport is None or self._backed_up():
            return False
        self.transport.send(WSMsgType.TEXT, text.encode())
        return True

    def close(self, code: int, reason: str, *, hang_up: bool = False) -> None:
        """Send a close frame with `code` and `reason` after what is queued; the connection ends
        when the client answers with its own (what it sends meanwhile is read and ignored, so
        its kernel does not see a reset and lose our close frame), or after CLOSE_TIMEOUT.
        `hang_up`: end it once the close frame is written, without waiting for the answer (a
        stopping server). Safe to repeat."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.close_code = code
        self.transport.send_close(WSCloseCode(code), reason.encode()[:123])
        if hang_up:
            self.transport.disconnect(graceful=True)
            return
        if self._reading_paused:
            self._reading_paused = False
            self.transport.underlying_transport.resume_reading()
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._cut)

    def pause_writing(self) -> None:
        """The socket's buffer passed its high-water mark: nothing to do here, as every send
        checks the buffer against `send_buffer_bytes` (picows would log a warning instead)."""

    def resume_writing(self) -> None:
        pass

    def pause_reading(self) -> None:
        """Read nothing more from this client until `resume_reading` (TCP slows it down)."""
        if not self._reading_paused and self.transport is not None and not self.closing:
            self._reading_paused = True
            self.transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closing:
            self._reading_paused = False
            self.transport.underlying_transport.resume_reading()

    # --- within ---------------------------------------------------------------------------

    def _deliver(self, kind: WSMsgType, payload: bytes) -> None:
        if kind == WSMsgType.TEXT:
            try:
                message: str | bytes = payload.decode()
            except UnicodeDecodeError:
                self.close(WSCloseCode.INVALID_TEXT.value, "a text message that is not UTF-8")
                return
        else:
            message = payload
        if self.session is not None:
            self.session.received(message)

    def _add_fragment(self, frame: WSFrame) -> None:
        assert self._fragments is not None
        payload = frame.get_payload_as_bytes()
        self._fragments_size += len(payload)
        if self._fragments_size > self.max_message_bytes:
            self._fragments = None
            self.close(WSCloseCode.MESSAGE_TOO_BIG.value, "message too big")
            return
        self._fragments.append(payload)
        if frame.fin:
            whole, self._fragments = b"".join(self._fragments), None
            self._deliver(self._fragments_type, whole)

    def _close_received(self, frame: WSFrame) -> None:
        """The client's close frame: the answer to ours, or its own, answered with its code."""
        assert self.transport is not None
        if not self.transport.is_close_frame_sent:
            self.closing = True
            code = frame.get_close_code()
            answer = WSCloseCode(code) if code in CLOSE_CODES and code else WSCloseCode.OK
            self.transport.send_close(answer)
        self.transport.disconnect(graceful=True)

    def _backed_up(self) -> bool:
        assert self.transport is not None
        size: int = self.transport.underlying_transport.get_write_buffer_size()
        return size > self.send_buffer_bytes

    def _cut(self) -> None:
        if not self.closed.done() and self.transport is not None:
            self.transport.disconnect(graceful=False)


class _HandedOverProtocol(WSProtocol):
    """picows's server protocol for a connection whose upgrade request uvicorn has already
    read: it gets those bytes through `data_received`, and tells uvicorn's shutdown about
    itself (`shutdown` closes with 1012, as uvicorn's own websockets do; a stopping server waits
    for the connection and its session's last work before the app's shutdown)."""

    def __init__(self, server_state: ServerState, *args: Any) -> None:
        super().__init__(*args)
        self._server_state = server_state
        self.channel: Channel | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        finishing = self.channel.finishing if self.channel is not None else None
        if finishing is None or finishing.done():
            self._server_state.connections.discard(self)
        else:
            finishing.add_done_callback(lambda _: self._server_state.connections.discard(self))

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            buffer = self.get_buffer(len(view))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            self.buffer_updated(size)
            view = view[size:]

    def shutdown(self) -> None:
        """uvicorn is stopping: a connection is told so (1012: reconnect after a moment) and
        hung up on, as uvicorn's own websockets do; one closing already is cut (its client had
        its chance to read the close frame)."""
        channel = self.channel
        if channel is not None and channel.transport is not None and not channel.closing:
            channel.close(WSCloseCode.SERVICE_RESTART.value, "server restarting", hang_up=True)
        elif self.transport is not None:
            self.transport.disconnect(graceful=False)


def protocol_factory(
    opened: Callable[[Channel], Session],
    host_allowed: Callable[[str], bool],
    max_message_bytes: int,
    send_buffer_bytes: int,
) -> Callable[..., asyncio.BaseProtocol]:
    """What uvicorn's `ws=` setting takes: called with uvicorn's keywords for every websocket
    upgrade request; the protocol it makes answers the handshake and drives a `Channel`.
    `host_allowed` is the HTTP routes' Host check (the upgrade does not pass their middleware)."""

    def make(config: Config, server_state: ServerState, app_state: dict[str, Any]) -> WSProtocol:
        proxies = _TrustedHosts(config.forwarded_allow_ips or "127.0.0.1")

        def listener(request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
            headers = Headers(
                raw=[(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
            )
            if request.path.split(b"?", 1)[0] != PATH:
                return _refused(404, b"Not Found")
            if not host_allowed(headers.get("host", "")):
                return _refused(400, b"Invalid host header")
            peer = protocol.transport.underlying_transport.get_extra_info("peername")
            address = peer[0] if isinstance(peer, tuple) else str(peer or "")
            forwarded = headers.get("x-forwarded-for")
            if config.proxy_headers and forwarded and address in proxies:
                address = proxies.get_trusted_client_address(forwarded)[0]
            channel = Channel(address, headers, max_message_bytes, send_buffer_bytes, opened)
            protocol.channel = channel
            return channel

        protocol = _HandedOverProtocol(
            server_state,
            None,  # host and port: a client's
            None,  # path: a client's
            False,  # the server side
            listener,
            _picows_log,
            True,  # an exception in a callback closes the connection with 1011 (and is logged)
            None,  # handshake timeout: uvicorn already has the request
            True,  # ping an idle client ...
            PING_SECONDS,
            PING_SECONDS,  # ... and cut it if no pong comes back in time
            WSAutoPingStrategy.PING_WHEN_IDLE,
            False,  # the client's pings are answered in `Channel.on_ws_frame`
            max_message_bytes,  # a larger frame closes with 1009
            None,  # extra response headers
            16 * 1024,  # initial read buffer
        )
        return protocol

    return make


def _refused(status: int, body: bytes) -> WSUpgradeResponseWithListener:
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(status, body), None
    )
