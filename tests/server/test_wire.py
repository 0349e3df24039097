"""The websocket wire of `/ws` (server/realtime/wire.py): what RFC 6455 allows a client to send is
understood, what it forbids closes the connection with the code that says why, and neither
touches another player or the game."""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
from pathlib import Path

import httpx
import pytest
from live_server import REPLY_TIMEOUT, SEVEN, ThreadServer, join, row_counts
from waiting import wait_until_async
from websockets.exceptions import ConnectionClosed

from server.realtime.limits import Limits

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{extra}"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def client_frame(payload: bytes, opcode: int = 0x1, *, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame (RFC 6455 §5.2), short payloads only."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    first = (0x80 if fin else 0) | rsv | opcode
    return struct.pack("!BB", first, 0x80 | len(payload)) + mask + masked


class RawClient:
    """A websocket client that writes whatever frames it is told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()

    @classmethod
    async def open(
        cls, server: ThreadServer, path: str = "/ws", forwarded_for: str | None = None
    ) -> tuple[RawClient, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        extra = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
        writer.write(UPGRADE.format(path=path, port=server.port, extra=extra).encode())
        async with asyncio.timeout(REPLY_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        return cls(reader, writer), head

    def send(self, frame: bytes) -> None:
        self.writer.write(frame)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (opcode, payload); servers do not mask."""
        async with asyncio.timeout(REPLY_TIMEOUT):
            while (parsed := self._parse()) is None:
                data = await self.reader.read(1 << 20)
                assert data, "the server hung up"
                self.buffer += data
            return parsed

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        size, start = buffer[1] & 0x7F, 2
        if size >= 126:
            start = 4 if size == 126 else 10
            if len(buffer) < start:
                return None
            size = int.from_bytes(buffer[2:start], "big")
        if len(buffer) < start + size:
            return None
        opcode, payload = buffer[0] & 0x0F, bytes(buffer[start : start + size])
        del buffer[: start + size]
        return opcode, payload

    async def message(self) -> dict[str, object]:
        opcode, payload = await self.frame()
        assert opcode == 0x1, (opcode, payload)
        found: dict[str, object] = json.loads(payload)
        return found

    async def close_code(self) -> int:
        """The code of the server's close frame (the text frames before it are skipped); the
        close handshake answered, the server hangs up."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x8:
                self.send(client_frame(payload[:2], 0x8))
                async with asyncio.timeout(REPLY_TIMEOUT):
                    assert not self.buffer and await self.reader.read() == b""  # it hung up
                code: int = struct.unpack("!H", payload[:2])[0]
                return code

    def close(self) -> None:
        self.writer.close()


async def test_a_message_sent_in_fragments_is_read_whole(server: ThreadServer) -> None:
    client, head = await RawClient.open(server)
    assert head.startswith(b"HTTP/1.1 101")
    hello = b'{"type": "hello", "v": 1, "name": "Ada"}'
    client.send(client_frame(hello[:7], fin=False))
    client.send(client_frame(b"", 0x9))  # a ping may come between the fragments
    client.send(client_frame(hello[7:20], 0x0, fin=False))
    client.send(client_frame(hello[20:], 0x0))
    pong = await client.frame()
    assert pong == (0xA, b"")
    welcome = await client.message()
    assert welcome["type"] == "welcome"
    client.send(client_frame(b'{"type": "ping", "id": "after"}'))
    assert await client.message() == {"type": "pong", "id": "after"}
    client.close()


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([client_frame(b'{"type":', 0x0)], 1002),  # a continuation with no message begun
        ([client_frame(b"{", fin=False), client_frame(b"{}")], 1002),  # a new one inside it
        ([client_frame(b'"\xff\xfe"')], 1007),  # text that is not UTF-8
        ([client_frame(b"{}", rsv=0x40)], 1002),  # an extension nobody negotiated
        (
            [client_frame(b"x" * 100, fin=False)]
            + [client_frame(b"x" * 100, 0x0, fin=False)] * 700,
            1009,
        ),  # fragments that add up past 64 KiB
    ],
    ids=["stray continuation", "message inside a message", "bad UTF-8", "rsv1", "too big"],
)
async def test_a_broken_frame_closes_with_its_code_and_changes_nothing(
    server: ThreadServer, frames: list[bytes], code: int
) -> None:
    other, _ = await join(server.ws, "Grace")
    before = row_counts(server.data_dir)
    closed_before = disconnects(server, code)
    client, _ = await RawClient.open(server)
    for frame in frames:
        client.send(frame)
    assert await client.close_code() == code
    client.close()
    assert row_counts(server.data_dir) == before
    assert await other.alive()
    await wait_until_async(
        lambda: disconnects(server, code) == closed_before + 1, 5, "the close is not counted"
    )


def disconnects(server: ThreadServer, code: int) -> float:
    """`ftm_disconnects_total` for `code`, as /metrics shows it."""
    text = httpx.get(f"{server.http}/metrics").text
    found = re.search(rf'^ftm_disconnects_total{{code="{code}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_the_client_closing_gets_its_code_back(server: ThreadServer) -> None:
    client, _ = await RawClient.open(server)
    client.send(client_frame(struct.pack("!H", 1001) + b"bye", 0x8))
    assert await client.frame() == (0x8, struct.pack("!H", 1001))
    async with asyncio.timeout(REPLY_TIMEOUT):
        assert not client.buffer and await client.reader.read() == b""  # and it hung up
    client.close()


async def test_an_upgrade_to_another_path_is_not_found(server: ThreadServer) -> None:
    client, head = await RawClient.open(server, "/elsewhere")
    assert head.startswith(b"HTTP/1.1 404")
    client.close()


async def test_a_server_shutting_down_says_so_and_keeps_what_it_acknowledged(
    data_dir: Path,
) -> None:
    """Stopping the server (SIGINT, a deploy) closes every connection with 1012 so that pages
    reconnect; a submission acknowledged before is stored."""
    with ThreadServer(data_dir, Limits()) as server:
        client, _ = await join(server.ws, "Ada")
        submitted = await client.request(
            {"type": "submit", "id": "s1", "drawing": SEVEN, "label": 7}, "submitted"
        )
        assert submitted["type"] == "submitted", submitted
    with pytest.raises(ConnectionClosed):
        while True:
            await client.recv()
    assert client.connection.close_code == 1012
    assert row_counts(data_dir)["attempts"] == 1


async def test_behind_a_trusted_proxy_each_player_counts_from_their_own_address(
    data_dir: Path,
) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 ($FORWARDED_ALLOW_IPS): the per-address cap
    counts the address the proxy names, not the proxy's."""
    limits = Limits(max_connections_per_address=2, hello_seconds=60)
    with ThreadServer(data_dir, limits) as server:
        crowded = [(await RawClient.open(server, forwarded_for="203.0.113.9"))[0] for _ in "ab"]
        third, _ = await RawClient.open(server, forwarded_for="203.0.113.9")
        assert await third.close_code() == 1008
        other, _ = await RawClient.open(server, forwarded_for="198.51.100.7")
        other.send(client_frame(b'{"type": "ping", "id": "1"}'))
        assert await other.message() == {
            "type": "error",
            "id": "1",
            "code": "hello_first",
            "message": "Send `hello` first.",
        }
        for client in [*crowded, third, other]:
            client.close()


async def test_a_client_that_pings_and_never_reads_is_cut_off(data_dir: Path) -> None:
    """Pongs are replies too: a flood of pings from a client that reads nothing fills its send
    buffer, and it is closed with 1013 like any slow reader, without growing the server."""
    limits = Limits(send_buffer_bytes=16 * 1024, hello_seconds=60)
    with ThreadServer(data_dir, limits) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(UPGRADE.format(path="/ws", port=server.port, extra="").encode())
        await reader.readuntil(b"\r\n\r\n")
        client = RawClient(reader, writer)
        pings = b"".join(client_frame(b"p" * 125, 0x9) for _ in range(1000))
        for _ in range(200):  # bounded: at most 26 MB of pings, far past what the kernel holds
            client.send(pings)
            try:
                async with asyncio.timeout(5):
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                break  # the server stopped reading: it closed the connection
        # Reading at last: the pongs it had room for, then the close code.
        assert await client.close_code() == 1013
        client.close()
        other, _ = await join(server.ws, "Grace")
        assert await other.alive()


async def test_every_message_costs_one_token_whichever_way_it_is_served(data_dir: Path) -> None:
    """A `hello` is served by the reader task, a ping from it too, a live guess in the frame's
    callback: each spends exactly one of the connection's message tokens."""
    limits = Limits(messages_burst=4, messages_per_second=0.001)
    with ThreadServer(data_dir, limits) as server:
        client, _ = await join(server.ws, "Ada")  # 1
        assert await client.alive()  # 2
        guess = await client.request(
            {"type": "predict", "id": "g", "drawing": SEVEN}, "prediction"
        )  # 3
        assert guess["type"] == "prediction"
        assert await client.alive()  # 4
        refused = await client.request({"type": "ping", "id": "5"}, "pong")
        assert (refused["type"], refused["code"]) == ("error", "rate_limited")
