"""kill -9 the server right after votes are acknowledged: after a restart every acknowledged vote,
the settled claim and every score are still there, and the boards equal the ones before."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from consensus_helpers import claim_task, make_claim, next_of
from live_server import ProcessServer, db_rows, join
from websockets.exceptions import ConnectionClosed

pytestmark = [pytest.mark.slow, pytest.mark.consensus_rules]


def boards(server: ProcessServer) -> dict[str, object]:
    return {
        name: httpx.get(f"{server.http}/api/leaderboard", params={"board": name}).json()["top"]
        for name in ("round", "all", "validators")
    }


async def test_acknowledged_votes_and_scores_survive_kill_9(data_dir: Path) -> None:
    server = ProcessServer(data_dir).start()
    ada, _, submitted = await make_claim(server.ws, "Ada")
    voters = []
    for name in ("Grace", "Linus", "Alan"):
        client, _ = await join(server.ws, name)
        voters.append((client, await claim_task(client, data_dir)))
    acknowledged = []
    for client, task in voters[:2]:
        vote = {"type": "vote", "task_id": task["task_id"], "answer": submitted["label"]}
        assert (await client.request(vote, "voted"))["type"] == "voted"
        acknowledged.append(task["task_id"])
    # The third vote settles the claim; the server dies as soon as it is acknowledged.
    alan, alan_task = voters[2]
    vote = {"type": "vote", "task_id": alan_task["task_id"], "answer": submitted["label"]}
    assert (await alan.request(vote, "voted"))["type"] == "voted"
    acknowledged.append(alan_task["task_id"])
    settled = await next_of(ada, "claim_settled")
    before = boards(server)
    server.kill()
    for client in (ada, *(c for c, _ in voters)):
        with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
            await client.close()
    assert settled["outcome"] == "verified"
    assert before["round"] and before["validators"], before

    stored = {row[0] for row in db_rows(data_dir, "SELECT task_id FROM votes")}
    assert set(acknowledged) <= stored
    assert db_rows(data_dir, "SELECT state FROM claims") == [("verified",)]

    server.start()
    try:
        assert boards(server) == before
        again, welcome = await join(server.ws, "Newcomer")
        assert welcome["round"]["fools"] == 1
        await again.close()
    finally:
        server.kill()
