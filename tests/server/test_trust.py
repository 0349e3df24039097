"""Trust that bots and account farms cannot buy (issue 11), through the live server.

The attack: fresh accounts answer their gold tasks with the game's own model (the task image
sent as a `predict`, its label answered) and then confirm a fake claim. With hard gold (digits
the served model misreads) that model-answering is exposed, and fresh accounts are never
established anyway: the fake is not verified, the accounts are flagged, and established honest
validators still settle true claims. Also: limits per player across connections, per address
for joins, and a moderator settling claims in a three-player game.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from consensus_helpers import as_answer, claim_task, gold_truth, make_claim, next_of, prepare
from data_dirs import LinearModelFactory, add_model
from live_server import (
    ADMIN_TOKEN,
    SEVEN,
    Client,
    ThreadServer,
    admin_headers,
    db_rows,
    join,
    open_client,
)
from waiting import wait_until_async

from server.config import default_rules
from server.realtime.limits import Limits
from server.realtime.shared_limits import PER_ADDRESS_SPECTATORS

# The default trust rules with a day shrunk to a second, so honest validators can become
# established within a test; everything else (warm-up, K, oracle test) as shipped.
FAST_TRUST = """
[trust]
established_span_seconds = 1.0
established_evidence = 8

[leaderboard]
push_interval_seconds = 0.05
"""
DEADLINE = 60.0


@pytest.fixture
def data_dir(tmp_path: Path, linear_onnx_model: LinearModelFactory) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    add_model(root, "v1", linear_onnx_model(seed=1))
    prepare(root, FAST_TRUST)
    return root


async def ask(client: Client, message: dict[str, Any], *types: str) -> dict[str, Any]:
    """A request, asked again after a `rate_limited` reply (scripted players are fast)."""
    while True:
        reply = await client.request(message, *types)
        if reply.get("code") != "rate_limited":
            return reply
        await asyncio.sleep(0.25)


async def vote(client: Client, task_id: str, answer: int | str) -> None:
    voted = await ask(
        client, {"type": "vote", "id": "v", "task_id": task_id, "answer": answer}, "voted"
    )
    assert voted["type"] == "voted", voted


def player(server: ThreadServer, name: str) -> dict[str, Any]:
    found = httpx.get(
        f"{server.http}/api/admin/players", params={"query": name}, headers=admin_headers()
    ).json()
    return next(p for p in found if p["name"] == name)


def state(server: ThreadServer, attempt_id: int) -> str:
    return str(
        db_rows(server.data_dir, "SELECT state FROM claims WHERE attempt_id = ?", (attempt_id,))[0][
            0
        ]
    )


def hard_gold(server: ThreadServer) -> int:
    return int(
        db_rows(server.data_dir, "SELECT count(*) FROM gold WHERE model_label != truth")[0][0]
    )


async def establish(server: ThreadServer, name: str) -> Client:
    """An honest validator who answers gold right until established (only gold is pending)."""
    client, _ = await join(server.ws, name)
    for _ in range(80):
        if player(server, name)["established"]:
            return client
        task = await ask(client, {"type": "task", "id": "t"}, "task", "no_task")
        assert task["type"] == "task", task
        truth = gold_truth(server.data_dir, task["task_id"])
        assert truth is not None, "only gold is pending while validators warm up"
        await vote(client, task["task_id"], as_answer(truth))
    raise AssertionError(f"{name} never became established")


async def model_bot(server: ThreadServer, name: str, tasks: int = 30) -> Client:
    """A fresh account that answers every task with the served model, and confirms any claim."""
    client, _ = await join(server.ws, name)
    for _ in range(tasks):
        task = await ask(client, {"type": "task", "id": "t"}, "task", "no_task")
        if task["type"] == "no_task":
            break
        guess = await ask(
            client, {"type": "predict", "id": "p", "drawing": task["drawing"]}, "prediction"
        )
        answer = guess["label"]
        rows = db_rows(  # the bot knows what it is confirming: its owner's claim
            server.data_dir,
            "SELECT a.label FROM tasks t JOIN attempts a ON a.id = t.attempt_id WHERE t.id = ?",
            (task["task_id"],),
        )
        if rows:
            answer = rows[0][0]
        await vote(client, task["task_id"], answer)
    return client


async def test_model_answering_fresh_accounts_cannot_verify_a_fake(server: ThreadServer) -> None:
    await wait_until_async(
        lambda: hard_gold(server) >= 10, DEADLINE, "hard gold read by the served model"
    )
    honest = [await establish(server, name) for name in ("Grace", "Linus", "Alan")]

    ada, _, fake = await make_claim(server.ws, "Ada")
    model_label = (fake["label"] - 1) % 10  # make_claim claims the model's guess + 1
    true_claimed = (model_label + 2) % 10
    true = await ask(
        ada, {"type": "submit", "id": "s2", "drawing": SEVEN, "label": true_claimed}, "submitted"
    )
    assert true["outcome"] == "pending", true

    bots = ("Bot1", "Bot2", "Bot3")
    for name in bots:
        await model_bot(server, name)
    for name in bots:
        flagged = player(server, name)
        assert flagged["model_oracle"] and not flagged["established"], flagged

    # Honest validators: the fake shows what the model read, the true claim what was claimed.
    truth = {fake["attempt_id"]: model_label, true["attempt_id"]: true_claimed}
    for client in honest:
        for _ in range(40):
            if all(state(server, a) != "pending" for a in truth):
                break
            task = await ask(client, {"type": "task", "id": "t"}, "task", "no_task")
            if task["type"] == "no_task":
                break
            gold = gold_truth(server.data_dir, task["task_id"])
            if gold is not None:
                await vote(client, task["task_id"], as_answer(gold))
                continue
            (attempt,) = db_rows(
                server.data_dir, "SELECT attempt_id FROM tasks WHERE id = ?", (task["task_id"],)
            )[0]
            await vote(client, task["task_id"], truth[attempt])

    assert state(server, fake["attempt_id"]) == "rejected_model_right"
    assert state(server, true["attempt_id"]) == "verified"
    settled = await next_of(ada, "claim_settled", lambda m: m["attempt_id"] == true["attempt_id"])
    assert settled["outcome"] == "verified"

    audit = httpx.get(
        f"{server.http}/api/admin/claims/{fake['attempt_id']}/audit", headers=admin_headers()
    ).json()
    for v in audit["votes"]:
        if v["name"] in bots:
            assert not v["counted"] and v["reason"] in ("new_account", "model_oracle"), v
        else:
            assert v["counted"] and v["reason"] == "established", v


async def test_fresh_accounts_that_pass_gold_cannot_verify_a_fake(
    tmp_path: Path, linear_onnx_model: LinearModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped trust rules (a day before anyone is established): accounts that answer all
    their gold right within a minute, as a good model would, get the fake and confirm it, and
    none of their votes counts."""
    root = tmp_path / "shipped"
    root.mkdir()
    add_model(root, "v1", linear_onnx_model(seed=1))
    prepare(root, "[leaderboard]\npush_interval_seconds = 0.05\n")
    monkeypatch.setenv("FTM_ADMIN_TOKEN", ADMIN_TOKEN)
    with ThreadServer(root, Limits()) as server:
        _, _, fake = await make_claim(server.ws, "Ada")
        farm = [f"Farm{i}" for i in range(4)]
        for name in farm:
            client, _ = await join(server.ws, name)
            task = await claim_task(client, server.data_dir, limit=40)
            await vote(client, task["task_id"], fake["label"])
        audit = httpx.get(
            f"{server.http}/api/admin/claims/{fake['attempt_id']}/audit", headers=admin_headers()
        ).json()
        assert audit["state"] == "pending" and audit["established_confirmers"] == 0
        assert [v["name"] for v in audit["votes"]] == farm
        assert all(not v["counted"] and v["reason"] == "new_account" for v in audit["votes"])
        assert not any(player(server, name)["established"] for name in farm)


async def test_per_player_limits_hold_across_ten_connections(server: ThreadServer) -> None:
    _, welcome = await join(server.ws, "Ada")
    connections = []
    for _ in range(10):
        client = await open_client(server.ws)
        resumed = await client.request(
            {"type": "hello", "v": 1, "token": welcome["token"]}, "welcome"
        )
        assert resumed["type"] == "welcome", resumed
        connections.append(client)
    for i, client in enumerate(connections):
        for j in range(3):
            submit = {"type": "submit", "id": f"s{i}-{j}", "drawing": SEVEN, "label": 3}
            await client.send(submit)
    replies = [await c.reply("submitted") for c in connections for _ in range(3)]
    accepted = [r for r in replies if r["type"] == "submitted"]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    burst = int(Limits().submit_burst)  # per player now, not per connection
    assert burst <= len(accepted) <= burst + 2  # a token or two may refill meanwhile
    assert len(limited) == len(replies) - len(accepted)
    assert "from this player" in limited[0]["message"]


async def test_joins_beyond_the_per_address_limit_are_rate_limited(
    server: ThreadServer,
) -> None:
    for i in range(default_rules().accounts.per_address_burst):  # FAST_TRUST keeps these
        await join(server.ws, f"Player{i}")
    client = await open_client(server.ws)
    refused = await client.request({"type": "hello", "v": 1, "name": "OneTooMany"}, "welcome")
    assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
    assert "new accounts" in refused["message"]


async def test_a_moderator_settles_claims_in_a_three_player_game(server: ThreadServer) -> None:
    ada, _, submitted = await make_claim(server.ws, "Ada")
    mod, welcome = await join(server.ws, "Mod")
    await join(server.ws, "Bea")
    marked = httpx.post(
        f"{server.http}/api/admin/players/{welcome['player']['id']}/moderator",
        headers=admin_headers(),
    )
    assert marked.json() == {"player_id": welcome["player"]["id"], "moderator": True}
    assert player(server, "Mod")["moderator"]
    # No warm-up for a moderator (only the usual unannounced gold, rarely twice in a row).
    task = await claim_task(mod, server.data_dir, limit=default_rules().gold.warmup_answers)
    await vote(mod, task["task_id"], submitted["label"])
    settled = await next_of(ada, "claim_settled")
    assert (settled["attempt_id"], settled["outcome"]) == (submitted["attempt_id"], "verified")
    unmarked = httpx.delete(
        f"{server.http}/api/admin/players/{welcome['player']['id']}/moderator",
        headers=admin_headers(),
    )
    assert unmarked.json()["moderator"] is False


async def test_spectators_beyond_the_per_address_limit_are_rate_limited(
    server: ThreadServer,
) -> None:
    burst = int(PER_ADDRESS_SPECTATORS.burst)
    replies = []
    for _ in range(burst * 4):  # far more than the burst plus what refills meanwhile
        client = await open_client(server.ws)
        replies.append(
            await client.request({"type": "hello", "v": 1, "spectator": True}, "welcome")
        )
        if replies[-1]["type"] == "error":
            break
    assert all(r["type"] == "welcome" for r in replies[:burst])
    assert replies[-1]["type"] == "error" and replies[-1]["code"] == "rate_limited", replies[-1]
    assert "spectators" in replies[-1]["message"]
