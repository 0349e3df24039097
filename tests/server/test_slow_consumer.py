"""A client that never reads: the others keep being served, and it is closed with 1013."""

from __future__ import annotations

import asyncio
import re
import socket
import statistics
import time
from pathlib import Path

import httpx
import pytest
from live_server import SEVEN, Client, ThreadServer, join
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.realtime.limits import Limits

pytestmark = pytest.mark.slow

# Generous rate limits so the stuck client can pile up replies fast; a small send buffer.
LIMITS = Limits(messages_burst=1e6, messages_per_second=1e6, send_buffer_bytes=16 * 1024)


def closed_for_lag(server: ThreadServer) -> float:
    text = httpx.get(f"{server.http}/metrics").text
    found = re.search(r'ftm_disconnects_total\{code="1013"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


async def round_trips(client: Client, count: int) -> list[float]:
    times = []
    for i in range(count):
        started = time.perf_counter()
        reply = await client.request(
            {"type": "predict", "id": str(i), "drawing": SEVEN}, "prediction"
        )
        assert reply["type"] == "prediction" and reply["id"] == str(i)
        times.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return times


async def test_a_client_that_never_reads_is_cut_off_and_others_are_served(data_dir: Path) -> None:
    with ThreadServer(data_dir, LIMITS) as server:
        others = [(await join(server.ws, f"Player {i}"))[0] for i in range(3)]
        baseline = await round_trips(others[0], 20)

        # The stuck client: a tiny receive buffer, and it never calls recv().
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        stuck = await connect(server.ws, sock=sock, max_queue=1)
        await stuck.send('{"type": "hello", "v": 1, "name": "Stuck"}')
        padding = "x" * 60
        for batch in range(200):  # bounded: at most 200 × 500 pings
            if closed_for_lag(server):
                break
            for i in range(500):
                await stuck.send(f'{{"type": "ping", "id": "{padding}{batch}.{i}"}}')
            # Meanwhile everyone else is served.
            assert len(await round_trips(others[batch % 3], 2)) == 2
        assert closed_for_lag(server) == 1

        during = []
        for client in others:
            during += await round_trips(client, 10)
        print(
            f"median round trip: {statistics.median(baseline) * 1e3:.2f} ms before, "
            f"{statistics.median(during) * 1e3:.2f} ms after the stuck client"
        )

        # Once it finally reads, it finds the backlog and then the close code.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(stuck.recv(), 30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        for client in others:
            assert await client.alive()
