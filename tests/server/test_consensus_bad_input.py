"""Votes that must be refused: each gets its error code and changes no row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from consensus_helpers import claim_task, counts, make_claim
from live_server import (
    Client,
    ThreadServer,
    admin_headers,
    db_rows,
    join,
    open_client,
)

from game_rules.answers import ANSWERS

pytestmark = pytest.mark.consensus_rules


async def refused(client: Client, message: dict[str, Any], data_dir: Path) -> str:
    """Send `message`; assert it is refused with nothing stored; return the error code."""
    before = counts(data_dir)
    reply = await client.request(message, "voted", "task", "no_task")
    assert reply["type"] == "error", reply
    assert reply["id"] == message.get("id")
    assert reply["message"]
    assert counts(data_dir) == before
    return str(reply["code"])


async def test_bad_votes_are_refused_and_change_nothing(server: ThreadServer) -> None:
    data = server.data_dir
    ada, _, submitted = await make_claim(server.ws, "Ada")
    claimed = submitted["label"]
    grace, _ = await join(server.ws, "Grace")
    linus, _ = await join(server.ws, "Linus")
    alan, _ = await join(server.ws, "Alan")
    mallory, mallory_welcome = await join(server.ws, "Mallory")
    joan, _ = await join(server.ws, "Joan")
    tasks = {}
    players = {"grace": grace, "linus": linus, "alan": alan, "mallory": mallory, "joan": joan}
    for name, client in players.items():
        tasks[name] = (await claim_task(client, data))["task_id"]
    vote = {"type": "vote", "id": "v1", "task_id": tasks["grace"], "answer": claimed}

    # Self-validation: Ada cannot vote on her own drawing, even holding a task for it.
    assert await refused(ada, vote, data) == "own_drawing"
    # A task given to someone else.
    assert await refused(linus, vote, data) == "task_not_assigned"
    # No such task, and malformed task ids.
    assert await refused(grace, {**vote, "task_id": "no-such-task"}, data) == "unknown_task"
    assert await refused(grace, {**vote, "task_id": "x" * 10_000}, data) == "unknown_task"
    assert await refused(grace, {**vote, "task_id": 7}, data) == "bad_message"
    # Answers out of range or of the wrong type.
    for answer in (10, ANSWERS, -1, 99, True, 7.0):
        assert await refused(grace, {**vote, "answer": answer}, data) in (
            "bad_label",
            "bad_message",
        )
    assert await refused(grace, {**vote, "answer": "7"}, data) == "bad_message"
    assert await refused(grace, {**vote, "answer": "y"}, data) == "bad_message"
    assert await refused(grace, {k: v for k, v in vote.items() if k != "answer"}, data) == (
        "bad_message"
    )

    # A double vote: the first counts; the same vote again (a resend) is acknowledged again
    # (without what the vote earned: that was told once), another answer is refused; neither
    # changes anything.
    first = await grace.request(vote, "voted")
    assert (first["type"], first["result"]) == ("voted", "pending")
    again = await grace.request(vote, "voted")
    assert again == {"type": "voted", "id": first["id"], "task_id": first["task_id"]}
    other = {**vote, "id": "v2", "answer": (claimed + 1) % 10}
    assert await refused(grace, other, data) == "already_voted"
    assert db_rows(data, "SELECT voter_id, answer FROM votes") == [(2, claimed)]

    # A banned player's vote and task requests are refused.
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as http:
        mallory_id = mallory_welcome["player"]["id"]
        banned = await http.post(f"/api/admin/players/{mallory_id}/ban")
        assert banned.status_code == 200, banned.text
    mallory_vote = {**vote, "task_id": tasks["mallory"]}
    assert await refused(mallory, mallory_vote, data) == "banned"
    assert await refused(mallory, {"type": "task", "id": "t"}, data) == "banned"

    # Two more votes settle the claim; a vote on its remaining task is then late: acknowledged
    # as such and stored uncounted, the claim unchanged.
    for name, client in (("linus", linus), ("alan", alan)):
        reply = await client.request({**vote, "task_id": tasks[name]}, "voted")
        assert reply["type"] == "voted", reply
        assert reply["result"] == "pending"
    assert db_rows(data, "SELECT state, votes FROM claims") == [("verified", 3)]
    late = await joan.request({**vote, "id": "late", "task_id": tasks["joan"]}, "voted")
    assert (late["type"], late["id"], late["result"]) == ("voted", "late", "late")
    assert db_rows(data, "SELECT state, votes FROM claims") == [("verified", 3)]
    assert db_rows(data, f"SELECT counted FROM votes WHERE task_id = '{tasks['joan']}'") == [(0,)]

    # Spectators cannot vote or ask for tasks.
    spectator = await open_client(server.ws)
    await spectator.request({"type": "hello", "v": 1, "spectator": True}, "welcome")
    assert await refused(spectator, vote, data) == "spectator"
    for client in (ada, spectator, *players.values()):
        await client.close()


async def test_bad_http_queries_get_clear_errors(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        for params in ({"board": "best"}, {"limit": "abc"}, {"limit": "0"}, {"limit": "101"}):
            response = await http.get("/api/leaderboard", params=params)
            assert response.status_code == 400, params
            assert response.json()["error"]["code"] == "bad_request"
        assert (await http.get("/api/hall-of-fame", params={"round": "-1"})).status_code == 400
        assert (await http.get("/api/hall-of-fame", params={"round": 99})).json() == []
        assert (await http.get("/api/players/999/stats")).status_code == 404
        empty = (await http.get("/api/leaderboard", params={"board": "all", "limit": 5})).json()
        assert (empty["top"], empty["you"], empty["size"]) == ([], None, 0)
        for path in ("/api/admin/review", "/api/admin/players", "/api/admin/votes.jsonl"):
            assert (await http.get(path)).status_code == 401
