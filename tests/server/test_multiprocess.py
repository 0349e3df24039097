"""Two server processes share one game through one PostgreSQL database and one Redis: scores,
claim outcomes and rounds cross from one process to the other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from consensus_helpers import claim_task, make_claim, next_of
from data_dirs import LinearModelFactory, add_model
from live_server import (
    SEVEN,
    Client,
    ProcessServer,
    SharedGame,
    admin_headers,
    db_rows,
    join,
    server_processes,
    spectate,
)
from services import PostgresServer, RedisServer
from waiting import wait_until_async

from game_rules.rounds import RoundState
from game_rules.scoring import GoldAnswered
from server.config import DataLayout
from server.prometheus import Metrics
from server.realtime.pubsub import RedisBroker
from server.serving.model_files import read_card
from server.serving.model_store import ModelStore
from server.storage import open_repository


async def validators(url: str, data_dir: Path, names: list[str]) -> list[tuple[Client, str]]:
    """Players on `url` who warmed up on gold and now hold a claim task each: (client, task id)."""
    found = []
    for name in names:
        client, _ = await join(url, name)
        found.append((client, (await claim_task(client, data_dir))["task_id"]))
    return found


async def vote_all(voters: list[tuple[Client, str]], answer: int) -> None:
    for client, task_id in voters:
        voted = await client.request(
            {"type": "vote", "id": "v", "task_id": task_id, "answer": answer}, "voted"
        )
        assert voted["type"] == "voted", voted


def scores(board: dict[str, Any]) -> dict[str, int]:
    return {row["name"]: row["score"] for row in board["top"]}


async def test_scores_and_claim_outcomes_cross_between_processes(shared_game: SharedGame) -> None:
    a, b, data_dir = shared_game.a, shared_game.b, shared_game.data_dir
    # Both started at once on an empty database: exactly one of them opened round 1.
    assert db_rows(data_dir, "SELECT number, state FROM rounds") == [(1, "open")]

    watcher_a = await spectate(a.ws)
    first = await watcher_a.request(
        {"type": "leaderboard", "id": "l", "board": "validators"}, "leaderboard"
    )
    assert first["size"] == 0
    watcher_b = await spectate(b.ws)
    await watcher_b.request({"type": "leaderboard", "id": "l", "board": "round"}, "leaderboard")

    # Ada draws on A; three validators on B verify her claim.
    ada, _, submitted = await make_claim(a.ws, "Ada")
    ada_board = await ada.request(
        {"type": "leaderboard", "id": "l", "board": "round"}, "leaderboard"
    )
    assert ada_board["you"] is None
    voters = await validators(b.ws, data_dir, ["Grace", "Linus", "Alan"])
    assigned = {db_rows(data_dir, "SELECT attempt_id FROM tasks WHERE id = ?", (t,))[0][0]
                for _, t in voters}  # fmt: skip
    assert assigned == {submitted["attempt_id"]}
    await vote_all(voters, submitted["label"])

    # The drawer on A hears the outcome decided on B.
    settled = await next_of(ada, "claim_settled")
    assert (settled["attempt_id"], settled["outcome"]) == (submitted["attempt_id"], "verified")
    assert settled["points"] > 0
    # A watcher on B sees Ada (a player on A) on the round board with her points.
    pushed = await next_of(watcher_b, "leaderboard", lambda m: "Ada" in scores(m))
    assert scores(pushed)["Ada"] == settled["points"]
    # A watcher on A sees the validators, who played on B, on the validators' board.
    pushed = await next_of(watcher_a, "leaderboard", lambda m: m["size"] == 3)
    assert {row["name"] for row in pushed["top"]} == {"Grace", "Linus", "Alan"}

    # Bob draws on B and is verified on B; Ada, on A, sees him join her on the round board.
    bob, _, bob_claim = await make_claim(b.ws, "Bob")
    second = [(client, (await claim_task(client, data_dir))["task_id"]) for client, _ in voters]
    await vote_all(second, bob_claim["label"])
    settled_bob = await next_of(bob, "claim_settled")
    assert settled_bob["outcome"] == "verified"
    pushed = await next_of(ada, "leaderboard", lambda m: "Bob" in scores(m))
    assert scores(pushed)["Bob"] == settled_bob["points"] > 0
    assert pushed["you"]["score"] == settled["points"]

    # The database agrees: two verified claims, each settled once.
    assert db_rows(data_dir, "SELECT state, votes FROM claims ORDER BY attempt_id") == [
        ("verified", 3),
        ("verified", 3),
    ]
    for client in (watcher_a, watcher_b, ada, bob, *(c for c, _ in voters)):
        await client.close()


async def test_a_round_launched_through_one_process_opens_on_the_other(
    shared_game: SharedGame, linear_onnx_model: LinearModelFactory
) -> None:
    a, b, data_dir = shared_game.a, shared_game.b, shared_game.data_dir
    add_model(data_dir, "v2", linear_onnx_model(seed=2))
    player_b, welcome = await join(b.ws, "Bea")
    assert welcome["round"]["number"] == 1 and welcome["model_version"] == "v1"
    watcher_b = await spectate(b.ws)
    board = await watcher_b.request(
        {"type": "leaderboard", "id": "l", "board": "round"}, "leaderboard"
    )
    assert board["round_id"] == welcome["round"]["id"]

    async with httpx.AsyncClient(base_url=a.http, headers=admin_headers()) as admin:
        created = await admin.post("/api/admin/rounds", json={"model_version": "v2", "open": True})
    assert created.status_code == 201, created.text
    opened = created.json()
    assert (opened["number"], opened["state"], opened["model_version"]) == (2, "open", "v2")

    # Everyone on B is told, and B serves round 2's model from then on.
    for client in (player_b, watcher_b):
        told = await next_of(client, "round", lambda m: m["round"]["number"] == 2)
        assert told["round"]["state"] == "open"
    # ... through Redis, not by polling the database.
    assert 'ftm_pubsub_received_total{topic="round"} 1.0' in httpx.get(f"{b.http}/metrics").text
    health = httpx.get(f"{b.http}/healthz").json()
    assert health["model_version"] == "v2"
    assert health["round"]["number"] == 2
    guess = await player_b.request({"type": "predict", "id": "p", "drawing": SEVEN}, "prediction")
    assert guess["model_version"] == "v2"
    # Bea's submission on B lands in round 2.
    submitted = await player_b.request(
        {"type": "submit", "id": "s", "drawing": SEVEN, "label": guess["label"]}, "submitted"
    )
    assert submitted["type"] == "submitted", submitted
    rows = db_rows(
        data_dir,
        "SELECT r.number, a.model_version FROM attempts a JOIN rounds r ON r.id = a.round_id",
    )
    assert rows == [(2, "v2")]
    # B's round board now follows round 2.
    pushed = await next_of(watcher_b, "leaderboard", lambda m: m["round_id"] == opened["id"])
    assert pushed["board"] == "round"
    assert httpx.get(f"{a.http}/healthz").json()["model_version"] == "v2"
    await player_b.close()
    await watcher_b.close()


async def test_a_round_opened_in_the_database_is_followed_on_a_bare_round_message(
    shared_game: SharedGame, linear_onnx_model: LinearModelFactory, redis_server: RedisServer
) -> None:
    """As the trainer worker does it: open the next round in the database, then publish a
    `round` message that carries no round object."""
    add_model(shared_game.data_dir, "v2", linear_onnx_model(seed=2))
    players = [(await join(s.ws, f"P{i}"))[0] for i, s in enumerate((shared_game.a, shared_game.b))]
    repo = await open_repository(shared_game.database_url)
    try:
        opened = await repo.create_round("v2", open_now=True)
    finally:
        await repo.close()
    broker = RedisBroker(redis_server.url, Metrics())
    await broker.start()
    try:
        await asyncio.wait_for(broker.subscribed.wait(), 10)
        broker.publish("round", {"number": opened.number, "model_version": "v2"})
        for client in players:
            told = await next_of(client, "round", lambda m: m["round"]["number"] == 2)
            assert (told["round"]["state"], told["round"]["model_version"]) == ("open", "v2")
    finally:
        await broker.stop()
    for server in (shared_game.a, shared_game.b):
        assert httpx.get(f"{server.http}/healthz").json()["model_version"] == "v2"
    for client in players:
        await client.close()


async def test_a_process_on_another_machine_fetches_the_rounds_model_or_says_it_cannot(
    tmp_path: Path,
    linear_onnx_model: LinearModelFactory,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A and B with their own data directories: B has only v1. A round on v2 (registered with
    its file) is served by B from the registry; one on v3 (never registered) is refused by B's
    /healthz until the registry has it."""
    dirs = [tmp_path / "a", tmp_path / "b"]
    for data_dir in dirs:
        add_model(data_dir, "v1", linear_onnx_model(seed=1))
    url = postgres_server.new_database()
    monkeypatch.setenv("FTM_DATABASE_URL", url)
    env = {"FTM_DATABASE_URL": url, "FTM_REDIS_URL": redis_server.url}
    with server_processes(dirs, env, tmp_path) as (a, b):
        registry = ModelStore(DataLayout(dirs[0], url))
        for version, seed in (("v2", 2), ("v3", 3)):
            add_model(dirs[0], version, linear_onnx_model(seed=seed))
        registry.register(read_card(DataLayout(dirs[0]).model_card_path("v2")))
        player_b, _ = await join(b.ws, "Bea")
        async with httpx.AsyncClient(base_url=a.http, headers=admin_headers()) as admin:
            opened = await admin.post(
                "/api/admin/rounds", json={"model_version": "v2", "open": True}
            )
            assert opened.status_code == 201, opened.text
            await next_of(player_b, "round", lambda m: m["round"]["number"] == 2)
            assert httpx.get(f"{b.http}/healthz").json()["model_version"] == "v2"
            assert (dirs[1] / "models" / "v2.onnx").read_bytes() == (
                dirs[0] / "models" / "v2.onnx"
            ).read_bytes()

            opened = await admin.post(
                "/api/admin/rounds", json={"model_version": "v3", "open": True}
            )
            assert opened.status_code == 201, opened.text
            health = await wait_for_health(b, lambda h: h["status"] != "ok")
            assert health["status"] == "round_model_missing"
            assert "v3" in health["error"] and "registry" in health["error"]
            assert health["model_version"] == "v2"  # B keeps serving what it has

            registry.register(read_card(DataLayout(dirs[0]).model_card_path("v3")))
            health = await wait_for_health(b, lambda h: h["status"] == "ok")
            assert health["model_version"] == "v3"
            told = await next_of(player_b, "round", lambda m: m["round"]["number"] == 3)
            assert told["round"]["model_version"] == "v3"
        await player_b.close()


async def wait_for_health(server: ProcessServer, condition: Any) -> dict[str, Any]:
    """/healthz once it meets `condition` (the periodic check runs every few seconds)."""
    async with httpx.AsyncClient(base_url=server.http) as http:

        async def health() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get("/healthz")).json()
            return body if condition(body) else None

        return await wait_until_async(health, 20, "/healthz never got there", poll=0.1)


async def test_what_a_lost_message_would_have_said_is_found_in_the_database(
    shared_game: SharedGame, linear_onnx_model: LinearModelFactory
) -> None:
    """No message at all (as if Redis dropped them): a round opened and a score event committed
    behind the servers' backs still reach every client, through the periodic check."""
    add_model(shared_game.data_dir, "v2", linear_onnx_model(seed=2))
    players = []
    for i, server in enumerate((shared_game.a, shared_game.b)):
        client, welcome = await join(server.ws, f"P{i}")
        await client.request({"type": "leaderboard", "id": "l", "board": "all"}, "leaderboard")
        players.append((client, welcome["player"]["id"]))
    repo = await open_repository(shared_game.database_url)
    try:
        opened = await repo.create_round("v2", open_now=True)
        event = GoldAnswered(1, opened.id, players[0][1], truth=3, answer=3)
        await repo.write_consensus(lambda store: store.append_event(event))
    finally:
        await repo.close()
    for client, _ in players:
        told = await next_of(client, "round", lambda m: m["round"]["number"] == 2)
        assert told["round"]["model_version"] == "v2"
        pushed = await next_of(client, "leaderboard", lambda m: m["size"] == 1)
        assert pushed["top"][0]["player_id"] == players[0][1]
        await client.close()


async def test_two_processes_starting_at_once_open_one_first_round(database_url: str) -> None:
    first, second = await open_repository(database_url), await open_repository(database_url)
    try:
        opened = await asyncio.gather(first.open_first_round("v1"), second.open_first_round("v1"))
        assert sorted(r is None for r in opened) == [False, True]
        assert [(r.number, r.state.value) for r in await second.rounds()] == [(1, "open")]
        assert await first.open_first_round("v1") is None  # never again
        # The current round: the open one, else the newest.
        scheduled = await first.create_round("v2")
        current = await second.current_round()
        assert current is not None and current.number == 1
        await first.move_round(current.id, current.state, RoundState.CLOSING)
        assert await second.current_round() == scheduled
    finally:
        await first.close()
        await second.close()
