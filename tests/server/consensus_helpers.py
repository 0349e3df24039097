"""Helpers for the consensus tests: a data directory with rules and MNIST gold, players who warm
up on gold (a test may read the gold truth from the database; players cannot), and row counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_dirs import link_mnist
from live_server import SEVEN, Client, db_rows, join

from server.storage import NewAttempt

# Real rules with small numbers: two gold answers make a validator trusted (and established:
# no span of time, no hard gold needed), three agreeing trusted votes verify a claim, and no
# gold is mixed in after the warm-up (so tests are short), and a claim goes to up to eight
# validators at once (lease slack: tests hand one claim to many). tests/server/test_trust.py runs
# the default trust rules; tests/server/test_task_leases.py the default leases.
TEST_RULES = """
[reliability]
min_reliability = 0.7

[trust]
established_evidence = 2
established_span_seconds = 0.0
oracle_min_hard = 0

[consensus]
min_trusted_voters = 3

[gold]
rate = 0.0
warmup_answers = 2
lease_slack = 5

[leaderboard]
push_interval_seconds = 0.05
"""

TABLES = (
    "attempts",
    "claims",
    "tasks",
    "votes",
    "gold_answers",
    "score_events",
    "voters",
    "pairs",
    "drawers",
)


def prepare(data_dir: Path, rules: str = TEST_RULES) -> None:
    """Rules override and the shared MNIST cache (for gold digits) in a test data directory."""
    (data_dir / "rules.toml").write_text(rules)
    link_mnist(data_dir)


def counts(data_dir: Path) -> dict[str, int]:
    return {t: db_rows(data_dir, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


def gold_truth(data_dir: Path, task_id: str) -> int | None:
    """The known answer of a gold task, or None if the task is a claim."""
    rows = db_rows(
        data_dir,
        "SELECT g.truth FROM tasks t JOIN gold g ON g.id = t.gold_id WHERE t.id = ?",
        (task_id,),
    )
    return rows[0][0] if rows else None


def as_answer(truth: int) -> int | str:
    return "x" if truth == 10 else truth


async def claim_task(client: Client, data_dir: Path, limit: int = 20) -> dict[str, Any]:
    """Answer gold tasks correctly until the server hands out a claim; return that task."""
    for _ in range(limit):
        task = await client.request({"type": "task", "id": "t"}, "task", "no_task")
        assert task["type"] == "task", task
        assert set(task["drawing"]) == {"png"}  # blind: no label, no guess
        truth = gold_truth(data_dir, task["task_id"])
        if truth is None:
            return task
        voted = await client.request(
            {"type": "vote", "id": "g", "task_id": task["task_id"], "answer": as_answer(truth)},
            "voted",
        )
        assert voted["type"] == "voted", voted
    raise AssertionError("no claim task after the warm-up")


async def make_claim(url: str, name: str) -> tuple[Client, dict[str, Any], dict[str, Any]]:
    """A player who fools the model; returns (client, welcome, submitted)."""
    client, welcome = await join(url, name)
    guess = await client.request({"type": "predict", "id": "p", "drawing": SEVEN}, "prediction")
    claimed = (guess["label"] + 1) % 10
    submitted = await client.request(
        {"type": "submit", "id": "s", "drawing": SEVEN, "label": claimed}, "submitted"
    )
    assert submitted["outcome"] == "pending", submitted
    return client, welcome, submitted


async def next_of(client: Client, kind: str, where: Any = None) -> dict[str, Any]:
    """The next push of `kind` (matching `where`, if given), from kept pushes or the socket."""
    while True:
        for message in client.pushes:
            if message["type"] == kind and (where is None or where(message)):
                client.pushes.remove(message)
                return message
        client.pushes.append(await client.recv())


def new_attempt(
    player_id: int, round_id: int, label: int, predicted: int, probs: list[float] | None = None
) -> NewAttempt:
    """A submission to store directly in a repository (a claim if `predicted` != `label`)."""
    return NewAttempt(
        player_id=player_id,
        round_id=round_id,
        strokes_json="[[[0,0],[1,1]]]",
        png=None,
        image=bytes(28 * 28 * 4),
        label=label,
        predicted=predicted,
        probs=probs or [0.1] * 10,
        model_version="v1",
    )
