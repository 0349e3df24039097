"""kill -9 the server between (and during) submissions: after a restart every acknowledged
submission, every player and every round is still there."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from live_server import ONE, SEVEN, ProcessServer, db_rows, join, open_client, row_counts
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.slow


def attempt_ids(data_dir: Path) -> set[int]:
    return {row[0] for row in db_rows(data_dir, "SELECT id FROM attempts")}


async def test_acknowledged_rows_survive_kill_9(data_dir: Path) -> None:
    server = ProcessServer(data_dir).start()
    ada, ada_welcome = await join(server.ws, "Ada")
    grace, grace_welcome = await join(server.ws, "Grace")
    acknowledged = []
    for label in (1, 2, 3):
        reply = await ada.request({"type": "submit", "drawing": SEVEN, "label": label}, "submitted")
        acknowledged.append(reply["attempt_id"])

    # Grace fires a few submissions; the server dies right after the first acknowledgement,
    # with the others in flight.
    for label in (4, 5, 6, 7):
        await grace.send({"type": "submit", "drawing": ONE, "label": label})
    acknowledged.append((await grace.reply("submitted"))["attempt_id"])
    server.kill()
    with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
        while True:  # replies that made it out before the kill were acknowledged too
            reply = await grace.reply("submitted")
            if reply["type"] == "submitted":
                acknowledged.append(reply["attempt_id"])

    assert set(acknowledged) <= attempt_ids(data_dir)
    counts = row_counts(data_dir)
    assert counts["players"] == 2
    assert counts["rounds"] == 1

    server.start()
    try:
        again = await open_client(server.ws)
        resumed = await again.request(
            {"type": "hello", "v": 1, "token": ada_welcome["token"]}, "welcome"
        )
        assert resumed["player"] == ada_welcome["player"]
        assert resumed["round"]["number"] == 1  # the same round, still open, not a new one
        assert resumed["round"]["attempts"] == len(attempt_ids(data_dir))
        after = await again.request({"type": "submit", "drawing": ONE, "label": 1}, "submitted")
        assert after["attempt_id"] > max(acknowledged)
        assert grace_welcome["player"]["id"] != ada_welcome["player"]["id"]
        assert row_counts(data_dir)["rounds"] == 1
    finally:
        server.kill()
