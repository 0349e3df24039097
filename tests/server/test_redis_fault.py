"""Redis restarts while players submit and vote on two server processes: nothing acknowledged
is lost (the database is the truth, Redis only carries hints), and afterwards every client's
leaderboard converges to the boards rebuilt from the stored score events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from consensus_helpers import as_answer, gold_truth
from live_server import (
    SEVEN,
    Client,
    SharedGame,
    db_rows,
    join,
    open_client,
)
from services import RedisServer

from game_rules.leaderboard import board
from game_rules.scoring import Scores
from server.config import DataLayout, load_rules
from server.storage.consensus import event_from_row

TURNS = 8  # each turn: every drawer submits once, every validator answers up to two tasks
RESTART_AT = 3  # the turn during which Redis goes away
CONVERGE_SECONDS = 20.0  # a resync or the periodic database check must land well within this
RETOLD_SECONDS = 20.0  # claim outcomes missed in the gap are told again within this


class Player:
    def __init__(self, client: Client, player_id: int, token: str) -> None:
        self.client = client
        self.player_id = player_id
        self.token = token
        self.submitted: list[int] = []  # acknowledged attempt ids
        self.voted: list[str] = []  # acknowledged task ids (claims and gold)


async def player(url: str, name: str) -> Player:
    client, welcome = await join(url, name)
    joined = Player(client, welcome["player"]["id"], welcome["token"])
    await client.request({"type": "leaderboard", "id": "l", "board": "all"}, "leaderboard")
    return joined


async def submit(drawer: Player, claimed: int) -> None:
    """Submit a new claim (a new request id: the same id again would be a resend), waiting out
    the rate limit (one a second) as the browser would."""
    request_id = f"s{len(drawer.submitted)}"
    for _ in range(5):
        reply = await drawer.client.request(
            {"type": "submit", "id": request_id, "drawing": SEVEN, "label": claimed}, "submitted"
        )
        if reply["type"] != "error" or reply["code"] != "rate_limited":
            break
        await asyncio.sleep(1.0)
    assert reply["type"] == "submitted", reply
    assert reply["outcome"] == "pending"
    drawer.submitted.append(reply["attempt_id"])


async def answer_a_task(validator: Player, data_dir: Path, claimed: int) -> None:
    """Ask for a task and answer it truthfully: the claim is right, gold by its truth."""
    client = validator.client
    task = await client.request({"type": "task", "id": "t"}, "task", "no_task")
    if task["type"] == "no_task":
        return
    truth = gold_truth(data_dir, task["task_id"])
    answer = claimed if truth is None else as_answer(truth)
    reply = await client.request(
        {"type": "vote", "id": "v", "task_id": task["task_id"], "answer": answer}, "voted"
    )
    assert reply["type"] == "voted", reply  # late (three others settled it first) or not
    validator.voted.append(task["task_id"])


def truth(data_dir: Path) -> list[tuple[int, int]]:
    """The all-time board folded from every stored score event: (player id, score) in rank order."""
    rows = db_rows(data_dir, "SELECT seq, kind, round_id, body FROM score_events ORDER BY seq")
    scores = Scores.rebuild(
        (event_from_row(*row) for row in rows), load_rules(DataLayout(data_dir))
    )
    return [(row.player_id, row.score) for row in board(scores.all_time, 100).top]


def shown(message: dict[str, Any]) -> list[tuple[int, int]]:
    return [(row["player_id"], row["score"]) for row in message["top"]]


async def converges(joined: Player, expected: list[tuple[int, int]]) -> None:
    """The client's newest leaderboard push becomes `expected` (reading pushes as they come)."""
    client = joined.client
    pushes = [m for m in client.pushes if m["type"] == "leaderboard"]
    latest = pushes[-1] if pushes else None
    deadline = time.monotonic() + CONVERGE_SECONDS
    while latest is None or shown(latest) != expected:
        left = deadline - time.monotonic()
        assert left > 0, f"player {joined.player_id} still shows {latest and shown(latest)}"
        try:
            message = await asyncio.wait_for(client.recv(), left)
        except TimeoutError:
            continue
        if message["type"] == "leaderboard":
            latest = message
        else:
            client.pushes.append(message)
    assert latest["you"] is None or (joined.player_id, latest["you"]["score"]) in expected


async def hears_every_outcome_once(drawer: Player, data_dir: Path) -> None:
    decided = {
        (attempt_id, state)
        for attempt_id, state in db_rows(
            data_dir,
            "SELECT c.attempt_id, c.state FROM claims c JOIN attempts a ON a.id = c.attempt_id"
            " WHERE a.player_id = ? AND c.state != 'pending'",
            (drawer.player_id,),
        )
    }
    deadline = time.monotonic() + RETOLD_SECONDS
    while True:
        told = [
            (m["attempt_id"], m["outcome"])
            for m in drawer.client.pushes
            if m["type"] == "claim_settled"
        ]
        if set(told) >= decided or time.monotonic() > deadline:
            break
        with contextlib.suppress(TimeoutError):
            drawer.client.pushes.append(await asyncio.wait_for(drawer.client.recv(), 1.0))
    assert sorted(told) == sorted(decided), f"player {drawer.player_id}"


async def test_a_redis_restart_during_play_loses_nothing_and_boards_converge(
    shared_game: SharedGame, redis_server: RedisServer
) -> None:
    a, b, data_dir = shared_game.a.ws, shared_game.b.ws, shared_game.data_dir
    drawers = [await player(a, "Ada"), await player(b, "Bob")]
    validators = [await player(url, f"Val {side}{i}") for side, url in (("A", a), ("B", b))
                  for i in range(2)]  # fmt: skip
    guess = await drawers[0].client.request(
        {"type": "predict", "id": "p", "drawing": SEVEN}, "prediction"
    )
    claimed = (guess["label"] + 1) % 10  # every claim fools the model; the crowd confirms it

    restart: asyncio.Future[None] | None = None
    for turn in range(TURNS):
        if turn == RESTART_AT:
            restart = asyncio.ensure_future(asyncio.to_thread(redis_server.restart, 1.0))
        await asyncio.gather(*(submit(d, claimed) for d in drawers))
        for _ in range(2):
            await asyncio.gather(*(answer_a_task(v, data_dir, claimed) for v in validators))
    assert restart is not None
    await restart
    # Settle what is left, after Redis is back.
    for _ in range(10):
        await asyncio.gather(*(answer_a_task(v, data_dir, claimed) for v in validators))

    # Nothing acknowledged is lost.
    acknowledged = sorted(i for d in drawers for i in d.submitted)
    assert len(acknowledged) == TURNS * len(drawers)
    assert [r[0] for r in db_rows(data_dir, "SELECT id FROM attempts ORDER BY id")] == acknowledged
    votes = {r[0] for r in db_rows(data_dir, "SELECT task_id FROM votes")}
    gold = {r[0] for r in db_rows(data_dir, "SELECT task_id FROM gold_answers")}
    assert votes.isdisjoint(gold)
    assert votes | gold == {t for v in validators for t in v.voted}
    settled = db_rows(data_dir, "SELECT count(*) FROM claims WHERE state = 'verified'")[0][0]
    assert settled > TURNS  # claims from both sides of the outage were verified

    # Every client, on either process, ends up showing the database's board.
    expected = truth(data_dir)
    assert len(expected) == len(drawers) + len(validators)
    await asyncio.gather(*(converges(p, expected) for p in (*drawers, *validators)))
    # Each drawer hears every outcome of their claims once, including those settled on the
    # other process while Redis was away.
    await asyncio.gather(*(hears_every_outcome_once(d, data_dir) for d in drawers))
    # And a player who reconnects, to either process, is welcomed with the same score.
    for p in (*drawers, *validators):
        await p.client.close()
        for url in (a, b):
            again = await open_client(url)
            welcome = await again.request({"type": "hello", "v": 1, "token": p.token}, "welcome")
            assert (p.player_id, welcome["stats"]["all_score"]) in expected
            await again.close()
