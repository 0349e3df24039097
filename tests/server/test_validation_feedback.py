"""What a validator hears back from a vote (`voted`): a gold answer's result and points (never
the true label), a claim vote as pending, the streak of gold answered right, and the warm-up
meter counting up to done — in the welcome too, so a returning validator sees where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consensus_helpers import TEST_RULES, as_answer, claim_task, gold_truth, make_claim, prepare
from live_server import Client, ThreadServer, join, open_client

from game_rules.answers import ANSWERS
from server.realtime.limits import Limits

RULES = TEST_RULES.replace("warmup_answers = 2", "warmup_answers = 3")
# What every vote hears, gold or claim: the same fields (`warmup` only while in warm-up, when
# every task is gold anyway), so the reply's shape does not tell the two apart.
VOTED = {"type", "id", "task_id", "result", "points", "streak"}


async def answer_gold(client: Client, data_dir: Path, right: bool) -> dict[str, Any]:
    task = await client.request({"type": "task", "id": "t"}, "task", "no_task")
    truth = gold_truth(data_dir, task["task_id"])
    assert truth is not None, "warm-up tasks are gold"
    answer = truth if right else (truth + 1) % ANSWERS
    vote = {"type": "vote", "id": "g", "task_id": task["task_id"], "answer": as_answer(answer)}
    voted = await client.request(vote, "voted")
    assert voted["type"] == "voted", voted
    return voted


async def test_a_new_validator_hears_points_streak_and_warm_up_progress(data_dir: Path) -> None:
    prepare(data_dir, RULES)
    with ThreadServer(data_dir, Limits()) as server:
        ada, welcome = await join(server.ws, "Ada")
        assert (welcome["streak"], welcome["warmup"]) == (0, {"answered": 0, "needed": 3})

        right = await answer_gold(ada, data_dir, right=True)
        assert set(right) == VOTED | {"warmup"}
        assert (right["result"], right["points"], right["streak"]) == ("right", 1, 1)
        assert right["warmup"] == {"answered": 1, "needed": 3}

        # A miss: "not what we expected", and nothing in the reply says what was.
        wrong = await answer_gold(ada, data_dir, right=False)
        assert set(wrong) == VOTED | {"warmup"}
        assert (wrong["result"], wrong["points"], wrong["streak"]) == ("wrong", -1, 0)
        assert wrong["warmup"] == {"answered": 2, "needed": 3}

        # The answer that ends warm-up reports it complete; a welcome after it has no meter.
        done = await answer_gold(ada, data_dir, right=True)
        assert (done["streak"], done["warmup"]) == (1, {"answered": 3, "needed": 3})
        back = await resumed(server, welcome["token"])
        assert back["streak"] == 1 and "warmup" not in back

        # A claim vote is pending: its points come when the claim settles; the streak stands.
        bob, _, _ = await make_claim(server.ws, "Bob")
        task = await claim_task(ada, data_dir)  # answers gold right until a claim comes
        streak = (await resumed(server, welcome["token"]))["streak"]
        vote = {"type": "vote", "id": "c", "task_id": task["task_id"], "answer": 3}
        pending = await ada.request(vote, "voted")
        assert set(pending) == VOTED
        assert (pending["result"], pending["points"], pending["streak"]) == ("pending", 0, streak)
        for client in (ada, bob):
            await client.close()


async def resumed(server: ThreadServer, token: str) -> dict[str, Any]:
    """The welcome of another connection resuming the player."""
    client = await open_client(server.ws)
    welcome = await client.request({"type": "hello", "v": 1, "token": token}, "welcome")
    await client.close()
    return welcome
