"""Task leases on the live server: a claim goes to no more validators than votes it may still
need, asking again gives the same task, an expired lease frees the slot, and a vote on a claim
decided meanwhile is acknowledged as late instead of refused; two processes racing for the
last slot give it to one request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from consensus_helpers import (
    TEST_RULES,
    as_answer,
    gold_truth,
    make_claim,
    new_attempt,
    prepare,
)
from live_server import Client, ThreadServer, db_rows, join
from waiting import wait_until_async

from game_rules import reliability as rl
from game_rules.leases import first_votes_to_settle
from game_rules.settings import with_changes
from server.config import default_rules
from server.prometheus import Metrics
from server.realtime.limits import Limits
from server.realtime.pubsub import LocalBroker
from server.storage import open_repository
from server.storage.consensus import ConsensusStore
from server.validation.pushes import Pushes
from server.validation.tasks import Tasks

LEASE_SECONDS = 3.0
# The test rules (three trusted votes settle a claim), with the default slack of no extra lease.
LEASE_RULES = TEST_RULES.replace(
    "lease_slack = 5", f"lease_slack = 0\nlease_seconds = {LEASE_SECONDS}"
)


async def ask(client: Client) -> dict[str, Any]:
    task = await client.request({"type": "task", "id": "t"}, "task", "no_task")
    assert task["type"] == "task", task
    return task


async def answer_gold(client: Client, data_dir: Path, task: dict[str, Any]) -> None:
    truth = gold_truth(data_dir, task["task_id"])
    assert truth is not None, "a claim task, not gold"
    vote = {"type": "vote", "id": "g", "task_id": task["task_id"], "answer": as_answer(truth)}
    assert (await client.request(vote, "voted"))["type"] == "voted"


async def warmed_up(url: str, name: str, data_dir: Path) -> Client:
    """A validator who answered the warm-up gold (two tasks in the test rules)."""
    client, _ = await join(url, name)
    for _ in range(2):
        await answer_gold(client, data_dir, await ask(client))
    return client


async def test_a_claim_is_leased_to_as_many_validators_as_votes_it_may_need(
    data_dir: Path,
) -> None:
    data = data_dir
    prepare(data, LEASE_RULES)
    with ThreadServer(data, Limits()) as server:
        validators = [await warmed_up(server.ws, f"V{i}", data) for i in range(4)]
        ada, _, submitted = await make_claim(server.ws, "Ada")
        vote = {"type": "vote", "id": "v", "answer": submitted["label"]}

        # Three trusted votes could settle it: three leases, and the fourth validator gets gold.
        tasks = [await ask(client) for client in validators[:3]]
        assert [gold_truth(data, t["task_id"]) for t in tasks] == [None] * 3
        fourth = await ask(validators[3])
        assert gold_truth(data, fourth["task_id"]) is not None
        # Asking again is the same task, not a second lease.
        assert (await ask(validators[0]))["task_id"] == tasks[0]["task_id"]

        # A lease holder who does not answer frees the slot when the lease expires.
        async def claim_for_the_fourth() -> dict[str, Any] | None:
            nonlocal fourth
            if gold_truth(data, fourth["task_id"]) is None:
                return fourth
            await answer_gold(validators[3], data, fourth)
            fourth = await ask(validators[3])
            return None

        await wait_until_async(
            claim_for_the_fourth, 4 * LEASE_SECONDS, "the claim once a lease expired", poll=0.3
        )
        assert db_rows(data, "SELECT state FROM claims") == [("pending",)]

        # An expired task can still be answered while its claim is pending: it counts.
        holders = [*zip(validators[:3], tasks, strict=True), (validators[3], fourth)]
        replies = []
        for client, task in holders:
            replies.append(await client.request({**vote, "task_id": task["task_id"]}, "voted"))
        assert [r["type"] for r in replies] == ["voted"] * 4
        assert [r["result"] for r in replies] == ["pending"] * 3 + ["late"]
        assert db_rows(data, "SELECT state, votes FROM claims") == [("verified", 3)]
        assert db_rows(data, "SELECT counted FROM votes ORDER BY id") == [(1,), (1,), (1,), (0,)]
        for client in (*validators, ada):
            await client.close()


RULES = with_changes(
    default_rules(),
    trust={"established_evidence": 2, "established_span_seconds": 0.0, "oracle_min_hard": 0},
)


async def test_requests_racing_on_two_processes_take_no_more_leases_than_slots(
    database_url: str,
) -> None:
    """Two server processes (two repositories on one database) hand out tasks at once: the last
    slot goes to one request only, the lease checked again under the write lock."""
    first, second = await open_repository(database_url), await open_repository(database_url)
    broker = LocalBroker(Metrics())
    try:
        drawer = await first.create_player("drawer", "drawer", "t0")
        game_round = await first.open_first_round("v1")
        assert game_round is not None
        await first.add_attempt(new_attempt(drawer.id, game_round.id, label=7, predicted=1))
        players = [await first.create_player(f"v{i}", f"v{i}", f"t{i + 1}") for i in range(8)]

        async def established(store: ConsensusStore) -> None:
            for p in players:
                voter = rl.Voter(p.id)
                for i in range(20):
                    voter = rl.record_gold(voter, i % 10, i % 10)
                await store.save_voter(voter)

        await first.write_consensus(established)
        round_id = game_round.id
        servers = [
            Tasks(repo, lambda: RULES, lambda: round_id, Pushes(repo, broker, lambda: RULES))
            for repo in (first, second)
        ]
        # No gold in this database: a player who finds no free slot gets no task.
        given = await asyncio.gather(*(servers[i % 2].task(p) for i, p in enumerate(players)))
        assert sum(task is not None for task in given) == first_votes_to_settle(RULES)
    finally:
        await first.close()
        await second.close()
