"""Helpers for the learning-loop tests: a data directory with a model that can be fine-tuned,
drawings that fool it submitted through the real server, their claims settled, and websocket
players that keep predicting while the trainer runs."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from consensus_helpers import as_answer, gold_truth
from data_dirs import JOB_TIMEOUT
from live_server import Client, ThreadServer, admin_headers, configured, db_rows, join
from waiting import wait_until_async

from game_rules.consensus import Claim, Outcome
from server.mnist import Mnist
from server.serving.preprocess import image_to_png
from server.storage.sync import connect as connect_database


def rotated_digits(mnist: Mnist, count: int, start: int = 0) -> list[tuple[np.ndarray, int]]:
    """MNIST test digits turned a quarter: a model trained on upright digits mostly misreads
    them, so submitting them with their true label makes claims."""
    images = mnist.test_images[start : start + count].astype(np.float32) / 255.0
    labels = mnist.test_labels[start : start + count]
    return [
        (np.rot90(image).copy(), int(label)) for image, label in zip(images, labels, strict=True)
    ]


async def submit_png(client: Client, image: np.ndarray, label: int) -> dict[str, Any]:
    png = base64.b64encode(image_to_png(image)).decode()
    reply = await client.request(
        {"type": "submit", "drawing": {"png": png}, "label": label}, "submitted"
    )
    assert reply["type"] == "submitted", reply
    return reply


def settle(data_dir: Path, attempt_id: int, outcome: Outcome, label: int, strength: float) -> None:
    """Settle a claim as the consensus would (the row the validation service writes)."""
    with connect_database(configured(data_dir).layout.database_url) as db:
        claimed, predicted, player = db.execute(
            "SELECT label, predicted, player_id FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
        posterior = [(1 - strength) / 10] * 11
        posterior[label] = strength
        claim = Claim(
            claim_id=attempt_id,
            drawer_id=player,
            claimed=claimed,
            model_label=predicted,
            prior=tuple([1 / 11] * 11),
            posterior=tuple(posterior),
            outcome=outcome,
            label=label,
        )
        db.execute(
            "UPDATE claims SET state = ?, label = ?, consensus = ?, settled_at = ?"
            " WHERE attempt_id = ?",
            (str(outcome), label, json.dumps(claim.to_dict()), time.time(), attempt_id),
        )


async def submit_claims(
    server: ThreadServer, mnist: Mnist, wanted: int, name: str = "Drawer"
) -> list[dict[str, Any]]:
    """Submit rotated digits until `wanted` of them are claims; their `submitted` replies."""
    client, _ = await join(server.ws, name)
    claims: list[dict[str, Any]] = []
    start = 0
    while len(claims) < wanted:
        assert start < 2000, "the model reads rotated digits too well to make claims"
        for image, label in rotated_digits(mnist, 50, start):
            reply = await submit_png(client, image, label)
            if reply["outcome"] == "pending":
                claims.append(reply)
                if len(claims) == wanted:
                    break
        start += 50
    await client.close()
    return claims


async def seed_verified(
    server: ThreadServer, mnist: Mnist, wanted: int, name: str = "Drawer"
) -> list[dict[str, Any]]:
    """`wanted` claims, each verified by an admin reviewing it."""
    claims = await submit_claims(server, mnist, wanted, name)
    async with admin_client(server.http) as admin:
        for reply in claims:
            await decide(admin, reply["attempt_id"], reply["label"])
    return claims


async def decide(admin: httpx.AsyncClient, attempt_id: int, answer: int | str) -> None:
    """Settle a claim the way an admin reviewing it does."""
    decided = await admin.post(f"/api/admin/review/{attempt_id}", json={"label": answer})
    assert decided.status_code == 200, decided.text


@dataclass
class Predictors:
    """Players predicting in a loop until stopped; every reply is kept."""

    url: str
    count: int = 3
    clients: list[Client] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> Predictors:
        for i in range(self.count):
            client, _ = await join(self.url, f"Watcher {i}")
            self.clients.append(client)
            self._tasks.append(asyncio.create_task(self._loop(client, i)))
        return self

    async def _loop(self, client: Client, i: int) -> None:
        stroke = [[10 + i, 10], [50, 90 - i]]
        while not self._stop.is_set():
            reply = await client.request(
                {"type": "predict", "drawing": {"strokes": [stroke]}}, "prediction"
            )
            self.replies.append(reply)
            await asyncio.sleep(0.02)

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        for client in self.clients:
            await client.close()

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.replies if r["type"] != "prediction"]

    def versions(self) -> list[str]:
        """The model versions that answered, in order, with repeats removed."""
        seen: list[str] = []
        for reply in self.replies:
            if reply["type"] == "prediction" and (not seen or seen[-1] != reply["model_version"]):
                seen.append(reply["model_version"])
        return seen


class TriggerLooks:
    """Counts the automatic retraining trigger's looks at the verified drawings of a running
    server. The server shows no count of its own, so this wraps its look
    (`LearningLoop._new_verified`); a test that no job starts waits for looks, not a guessed
    time."""

    def __init__(self, server: ThreadServer) -> None:
        learning = server.app.state.server.learning
        look = learning._new_verified
        self.count = 0

        def counted() -> tuple[int, int | None]:
            seen = look()
            self.count += 1
            return seen

        learning._new_verified = counted

    async def settled(self) -> None:
        """Until the trigger has acted on what is in the database now: a look that began after
        this call has ended, and so has what the trigger did about it (the look after it has
        ended too). The trigger does not look while a job it started runs, so a job started by
        mistake makes this wait for that job."""
        target = self.count + 3
        await wait_until_async(
            lambda: self.count >= target, JOB_TIMEOUT, "the trigger stopped looking", 0.05
        )


async def trainer_job(admin: httpx.AsyncClient) -> dict[str, Any]:
    """The newest training job as the console shows it ({} before the first)."""
    job: dict[str, Any] = (await admin.get("/api/admin/trainer")).json()
    return job


async def wait_for_job(admin: httpx.AsyncClient) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the trainer until the job finishes; the final state and what was seen on the way."""
    seen: list[dict[str, Any]] = []

    async def finished() -> dict[str, Any] | None:
        seen.append(await trainer_job(admin))
        return seen[-1] if seen[-1]["state"] != "running" else None

    job = await wait_until_async(finished, JOB_TIMEOUT, "the training job did not finish", 0.25)
    return job, seen


def admin_client(http: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=http, headers=admin_headers(), timeout=30)


async def verify_by_votes(server: ThreadServer, voters: int = 3) -> int:
    """Players validate every pending claim with its claimed label (warming up on gold first,
    as the rules demand); returns how many votes were cast on claims. Needs rules where
    `voters` trusted votes settle a claim (consensus_helpers.TEST_RULES)."""
    cast = 0
    for i in range(voters):
        client, _ = await join(server.ws, f"Validator {i}")
        while True:
            task = await client.request({"type": "task"}, "task", "no_task")
            if task["type"] == "no_task":
                break
            assert task["type"] == "task", task
            truth = gold_truth(server.data_dir, task["task_id"])
            if truth is None:
                answer: int | str = claimed_label(server.data_dir, task["task_id"])
                cast += 1
            else:
                answer = as_answer(truth)
            voted = await client.request(
                {"type": "vote", "task_id": task["task_id"], "answer": answer}, "voted"
            )
            assert voted["type"] == "voted", voted
        await client.close()
    return cast


def claimed_label(data_dir: Path, task_id: str) -> int:
    rows = db_rows(
        data_dir,
        "SELECT a.label FROM tasks t JOIN attempts a ON a.id = t.attempt_id WHERE t.id = ?",
        (task_id,),
    )
    return int(rows[0][0])
