"""A claim through the real server: blind tasks, gold warm-up, votes, settlement, pushes and
leaderboards; the scores rebuilt from the stored events equal the live ones."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from consensus_helpers import (
    claim_task,
    counts,
    gold_truth,
    make_claim,
    next_of,
)
from live_server import ThreadServer, db_rows, join, open_client

from game_rules.leaderboard import board
from game_rules.scoring import Scores
from server.config import load_rules
from server.storage.consensus import event_from_row

pytestmark = pytest.mark.consensus_rules


async def test_a_claim_is_verified_by_three_validators(server: ThreadServer) -> None:
    ada, welcome, submitted = await make_claim(server.ws, "Ada")
    attempt_id = submitted["attempt_id"]
    board_reply = await ada.request(
        {"type": "leaderboard", "id": "l", "board": "round"}, "leaderboard"
    )
    assert board_reply["you"] is None  # no points yet

    validators = []
    for name in ("Grace", "Linus", "Alan"):
        client, _ = await join(server.ws, name)
        task = await claim_task(client, server.data_dir)
        validators.append((client, task))
    tasks = {t["task_id"] for _, t in validators}
    assigned = db_rows(
        server.data_dir,
        f"SELECT DISTINCT attempt_id FROM tasks WHERE id IN ({','.join('?' * len(tasks))})",
        tuple(tasks),
    )
    assert assigned == [(attempt_id,)]  # the only claim, given blind to each of them

    # Asking again gives the same unanswered task: no skipping to a nicer drawing.
    grace, grace_task = validators[0]
    again = await grace.request({"type": "task", "id": "t2"}, "task")
    assert again["task_id"] == grace_task["task_id"]
    # Nobody is given their own drawing.
    ada_task = await ada.request({"type": "task", "id": "t"}, "task", "no_task")
    assert (
        ada_task["type"] == "no_task"
        or gold_truth(server.data_dir, ada_task["task_id"]) is not None
    )

    claimed = submitted["label"]
    for client, task in validators:
        voted = await client.request(
            {"type": "vote", "id": "v", "task_id": task["task_id"], "answer": claimed}, "voted"
        )
        assert (voted["type"], voted["task_id"], voted["result"]) == (
            "voted",
            task["task_id"],
            "pending",
        )
    # Never the same drawing twice: Grace's next task is gold, not the claim again.
    after = await grace.request({"type": "task", "id": "t3"}, "task")
    assert gold_truth(server.data_dir, after["task_id"]) is not None

    settled = await next_of(ada, "claim_settled")
    assert settled["attempt_id"] == attempt_id
    assert settled["outcome"] == "verified"
    assert settled["consensus_label"] == claimed
    assert settled["points"] > 0
    pushed = await next_of(ada, "leaderboard", lambda m: m["you"] is not None)
    assert pushed["board"] == "round"
    assert pushed["you"]["rank"] == 1
    assert pushed["you"]["score"] == settled["points"]
    assert pushed["top"][0]["name"] == "Ada"

    assert db_rows(server.data_dir, "SELECT state, label, votes FROM claims") == [
        ("verified", claimed, 3)
    ]
    consensus = json.loads(db_rows(server.data_dir, "SELECT consensus FROM claims")[0][0])
    assert [v["counted"] for v in consensus["votes"]] == [True, True, True]
    assert consensus["posterior"][claimed] >= 0.999  # sure enough to become gold itself
    assert db_rows(server.data_dir, "SELECT attempt_id, truth FROM gold WHERE attempt_id > 0") == [
        (attempt_id, claimed)
    ]

    # The validators' board: each matched the consensus and answered two gold digits.
    validators_board = await grace.request(
        {"type": "leaderboard", "id": "l", "board": "validators"}, "leaderboard"
    )
    assert {row["name"] for row in validators_board["top"]} == {"Grace", "Linus", "Alan"}
    assert validators_board["you"]["of"] == 3

    # Spectators read the same over HTTP, and the round counts the verified fool.
    async with httpx.AsyncClient(base_url=server.http) as http:
        round_board = (await http.get("/api/leaderboard", params={"board": "round"})).json()
        fame = (await http.get("/api/hall-of-fame", params={"round": 1})).json()
        stats = (await http.get(f"/api/players/{welcome['player']['id']}/stats")).json()
        current = (await http.get("/api/round")).json()
    assert round_board["top"] == pushed["top"]
    assert [f["attempt_id"] for f in fame] == [attempt_id]
    assert fame[0]["player"] == "Ada" and fame[0]["png"]
    assert (stats["attempts"], stats["fools"], stats["verified"]) == (1, 1, 1)
    assert current["fools"] == 1

    # A returning drawer sees their score and the outcome in the welcome.
    resumed = await resume(server, welcome["token"])
    assert resumed["stats"]["all_score"] == settled["points"]
    assert resumed["claims"][0]["attempt_id"] == attempt_id
    assert resumed["claims"][0]["outcome"] == "verified"

    for client, _ in validators:
        await client.close()
    await ada.close()

    assert_rebuilt_scores_match(server)


async def resume(server: ThreadServer, token: str) -> dict[str, Any]:
    client = await open_client(server.ws)
    welcome = await client.request({"type": "hello", "v": 1, "token": token}, "welcome")
    await client.close()
    return welcome


def assert_rebuilt_scores_match(server: ThreadServer) -> None:
    """Fold the stored score events from scratch: every board equals the live one."""
    rows = db_rows(
        server.data_dir, "SELECT seq, kind, round_id, body FROM score_events ORDER BY seq"
    )
    rebuilt = Scores.rebuild(
        (event_from_row(*row) for row in rows), load_rules(server.app.state.server.layout)
    )
    live = server.app.state.server.game.validation.boards
    for name, tallies in (("all", rebuilt.all_time), ("validators", rebuilt.validators)):
        response = httpx.get(f"{server.http}/api/leaderboard", params={"board": name, "limit": 100})
        expected = [(r.player_id, r.score) for r in board(tallies, 100).top]
        assert [(r["player_id"], r["score"]) for r in response.json()["top"]] == expected
        assert expected  # not vacuous
    assert rebuilt.to_dict() == live.scores.to_dict()
    assert counts(server.data_dir)["score_events"] == len(rows)


async def test_votes_racing_on_one_claim_settle_it_exactly_once(server: ThreadServer) -> None:
    ada, _, submitted = await make_claim(server.ws, "Ada")
    validators = []
    for i in range(6):
        client, _ = await join(server.ws, f"Racer {i}")
        validators.append((client, await claim_task(client, server.data_dir)))
    await asyncio.gather(
        *(
            client.send({"type": "vote", "task_id": task["task_id"], "answer": submitted["label"]})
            for client, task in validators
        )
    )
    replies = [await client.reply("voted") for client, _ in validators]
    assert [r["type"] for r in replies] == ["voted"] * 6
    assert sorted(r["result"] for r in replies) == ["late"] * 3 + ["pending"] * 3
    assert db_rows(server.data_dir, "SELECT state, votes FROM claims") == [("verified", 3)]
    assert db_rows(server.data_dir, "SELECT counted, count(*) FROM votes GROUP BY counted") == [
        (0, 3),
        (1, 3),
    ]
    settled = await next_of(ada, "claim_settled")
    assert settled["outcome"] == "verified"
    for client, _ in validators:
        await client.close()
    await ada.close()
    assert_rebuilt_scores_match(server)
