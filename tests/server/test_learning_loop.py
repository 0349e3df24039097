"""The learning loop through the real server: verified drawings → an admin launches the next
round → a small training in the worker process while players keep predicting → gate → swap →
every client told. And the ways it must not hurt the game: a refused candidate, a crashed or
cancelled trainer, a second launch."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from consensus_helpers import TEST_RULES
from data_dirs import SMALL_JOB, trained_data_dir
from live_server import ADMIN_TOKEN, ThreadServer, db_rows, join
from loop_helpers import (
    Predictors,
    TriggerLooks,
    admin_client,
    seed_verified,
    submit_claims,
    trainer_job,
    verify_by_votes,
    wait_for_job,
)
from waiting import wait_until_async

from game_rules.heldout import content_key, held_out
from server.config import DataLayout
from server.mnist import Mnist
from server.realtime.limits import Limits

pytestmark = pytest.mark.slow
# The tests seed drawings faster than a person submits.
GENEROUS = Limits(
    messages_burst=10_000,
    messages_per_second=10_000,
    predict_burst=10_000,
    predict_per_second=10_000,
    submit_burst=10_000,
    submit_per_second=10_000,
    tasks_burst=10_000,
    tasks_per_second=10_000,
)


@pytest.fixture
def loop_dir(tmp_path: Path, trained_model: Path) -> Path:
    return trained_data_dir(tmp_path / "data", trained_model)


StartServer = Callable[..., ThreadServer]


@pytest.fixture
def start_server(loop_dir: Path, monkeypatch: pytest.MonkeyPatch) -> StartServer:
    """`with start_server(**env) as server:` a real server on `loop_dir`, small jobs."""
    monkeypatch.setenv("FTM_ADMIN_TOKEN", ADMIN_TOKEN)
    for name, value in SMALL_JOB.items():
        monkeypatch.setenv(name, value)

    def start(**env: str) -> ThreadServer:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return ThreadServer(loop_dir, GENEROUS)

    return start


async def test_next_round_trains_gates_and_swaps_without_a_failed_prediction(
    start_server: StartServer, loop_dir: Path, mnist: Mnist
) -> None:
    (loop_dir / "rules.toml").write_text(TEST_RULES)  # three trusted votes verify a claim
    with start_server() as server:
        claims = await submit_claims(server, mnist, wanted=40)
        assert await verify_by_votes(server, voters=3) == 3 * 40
        states = db_rows(loop_dir, "SELECT state, label, consensus FROM claims ORDER BY attempt_id")
        assert [(state, label) for state, label, _ in states] == [
            ("verified", c["label"]) for c in claims
        ]
        async with admin_client(server.http) as admin, Predictors(server.ws) as players:
            launched = await admin.post("/api/admin/rounds/next")
            assert launched.status_code == 202, launched.text
            images = db_rows(
                loop_dir, "SELECT a.image FROM attempts a JOIN claims c ON c.attempt_id = a.id"
            )
            keys = [content_key(np.frombuffer(image, "<f4")) for (image,) in images]
            heldout_ids = [key for key, held in zip(keys, held_out(keys, 20), strict=True) if held]
            examples = launched.json()["examples"]
            assert (examples["train"], examples["heldout"]) == (
                40 - len(heldout_ids),
                len(heldout_ids),
            )
            job, seen = await wait_for_job(admin)
            await wait_until_async(
                lambda: players.versions()[-1:] == ["v2"], 30, "no prediction by the new model"
            )
        assert job["state"] == "succeeded", job
        assert (job["outcome"], job["version"], job["opened_round"]) == ("passed", "v2", 2)
        assert job["gate"]["passed"] is True
        assert any(s["step"] > 0 and s["loss"] is not None for s in seen), "no live progress"

        assert players.failures == []
        assert players.versions() == ["v1", "v2"]
        for client in players.clients:
            pushed = [p["round"] for p in client.pushes if p["type"] == "round"]
            # A repeat of the round the client joined in is a harmless hint (a pub/sub resync
            # at start may send one); round 2 must arrive, once.
            news = [(r["number"], r["state"], r["model_version"]) for r in pushed]
            assert [n for n in news if n != (1, "open", "v1")] == [(2, "open", "v2")]

        async with admin_client(server.http) as admin:
            health = (await admin.get("/healthz")).json()
            assert health["model_version"] == "v2"
            rounds = (await admin.get("/api/admin/rounds")).json()
            assert [(r["number"], r["state"], r["model_version"]) for r in rounds] == [
                (2, "open", "v2"),
                (1, "closing", "v1"),
            ]
            models = {m["version"]: m for m in (await admin.get("/api/admin/models")).json()}
            assert {v: m["status"] for v, m in models.items()} == {"v1": "retired", "v2": "serving"}
            assert models["v2"]["parent"] == "v1"
            assert models["v2"]["training"]["extra"] == 40 - len(heldout_ids)
            assert models["v2"]["gate"]["passed"] is True
            assert len(models["v2"]["sha256"]) == 64

            metrics = (await admin.get("/api/models/metrics")).json()
        assert [m["version"] for m in metrics] == ["v1", "v2"]
        first = metrics[0]
        assert first["rounds"] == [1] and first["verified"] == 40
        assert first["attempts"] >= 40 and first["vmer"] == 40 / first["attempts"]
        for row in metrics:
            assert 0.5 <= row["mnist_accuracy"] <= 1
            assert set(row["heldout"]) == ({"1"} if heldout_ids else set())
        assert metrics[1]["attempts"] == 0 and metrics[1]["vmer"] is None


async def test_a_refused_candidate_leaves_the_old_model_serving(
    start_server: StartServer, loop_dir: Path, mnist: Mnist
) -> None:
    with start_server(FTM_GATE_MNIST_FLOOR="1.0") as server:  # no model reaches 100%
        await seed_verified(server, mnist, wanted=12)
        async with admin_client(server.http) as admin, Predictors(server.ws) as players:
            assert (await admin.post("/api/admin/rounds/next")).status_code == 202
            job, _ = await wait_for_job(admin)
        assert (job["state"], job["outcome"], job["version"]) == ("failed", "rejected", "v2")
        assert "failed the gate: MNIST accuracy" in job["error"] and "floor 1" in job["error"]
        failed = [c["name"] for c in job["gate"]["checks"] if not c["passed"]]
        assert failed == ["mnist_accuracy"]
        assert players.failures == [] and players.versions() == ["v1"]
        rounds_heard = [
            p["round"] for c in players.clients for p in c.pushes if p["type"] == "round"
        ]
        # Only the open round's counts moving (submissions and settled claims are pushed), no move.
        assert {(r["number"], r["state"], r["model_version"]) for r in rounds_heard} <= {
            (1, "open", "v1")
        }

        async with admin_client(server.http) as admin:
            assert (await admin.get("/healthz")).json()["model_version"] == "v1"
            rounds = (await admin.get("/api/admin/rounds")).json()
            assert [(r["number"], r["state"]) for r in rounds] == [(1, "open")]
            models = {m["version"]: m for m in (await admin.get("/api/admin/models")).json()}
            assert models["v2"]["status"] == "rejected"
            assert "floor 1" in models["v2"]["gate"]["reason"]
            # A refused candidate can never serve, by any door.
            rollback = await admin.post("/api/admin/models/v2/rollback")
            assert (rollback.status_code, rollback.json()["error"]["code"]) == (
                409,
                "model_rejected",
            )
            direct = await admin.post(
                "/api/admin/rounds", json={"model_version": "v2", "open": True}
            )
            assert direct.status_code == 409
            assert [m["version"] for m in (await admin.get("/api/models/metrics")).json()] == ["v1"]
    assert db_rows(loop_dir, "SELECT state, version, reason FROM training_jobs") == [
        ("rejected", "v2", job["error"])
    ]


async def test_a_crashed_trainer_is_reported_and_the_game_goes_on(
    start_server: StartServer, loop_dir: Path
) -> None:
    with start_server() as server:
        player, _ = await join(server.ws, "Ada")
        learning = server.app.state.server.learning
        async with admin_client(server.http) as admin:
            assert (await admin.post("/api/admin/rounds/next")).status_code == 202
            second = await admin.post("/api/admin/rounds/next")
            assert (second.status_code, second.json()["error"]["code"]) == (409, "trainer_busy")
            assert "already running" in second.json()["error"]["message"]
            pid = await wait_until_async(lambda: learning._trainer.pid, 60, "no trainer process")
            os.kill(pid, signal.SIGKILL)
            job, _ = await wait_for_job(admin)
            assert (job["state"], job["outcome"]) == ("failed", "failed")
            assert "killed by SIGKILL" in job["error"]
            assert await player.alive()
            reply = await player.request(
                {"type": "predict", "drawing": {"strokes": [[[50, 10], [52, 90]]]}}, "prediction"
            )
            assert (reply["type"], reply["model_version"]) == ("prediction", "v1")
            # The next job may start: the crash left nothing behind.
            assert (await admin.post("/api/admin/rounds/next")).status_code == 202
            cancelled = await admin.post("/api/admin/trainer/cancel")
            assert cancelled.status_code == 200
            job, _ = await wait_for_job(admin)
            assert (job["state"], job["outcome"]) == ("cancelled", "cancelled")
            again = await admin.post("/api/admin/trainer/cancel")
            assert (again.status_code, again.json()["error"]["code"]) == (409, "no_job")
            assert (await admin.get("/healthz")).json()["model_version"] == "v1"
        await player.close()


async def test_unreadable_parent_weights_fail_the_job_with_the_reason(
    start_server: StartServer, loop_dir: Path
) -> None:
    DataLayout(loop_dir).models_dir.joinpath("v1.pt").write_bytes(b"not torch weights")
    with start_server() as server:
        async with admin_client(server.http) as admin:
            assert (await admin.post("/api/admin/rounds/next")).status_code == 202
            job, _ = await wait_for_job(admin)
            assert (job["state"], job["version"]) == ("failed", None)
            assert "cannot fine-tune from v1" in job["error"]
            assert (await admin.get("/healthz")).json()["model_version"] == "v1"
            models = (await admin.get("/api/admin/models")).json()
            assert [(m["version"], m["status"]) for m in models] == [("v1", "serving")]


async def test_enough_new_verified_drawings_start_a_candidate_left_for_an_admin(
    start_server: StartServer, loop_dir: Path, mnist: Mnist, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[retrain]\nnew_verified_threshold = 10\nauto_open_next_round = false\n")
    with start_server(FTM_RULES=str(rules), FTM_RETRAIN_POLL_SECONDS="0.2") as server:
        looks = TriggerLooks(server)
        async with admin_client(server.http) as admin:
            await seed_verified(server, mnist, wanted=9)
            await looks.settled()
            assert (await admin.get("/api/admin/trainer")).json() == {}  # 9 < 10: no job
            await seed_verified(server, mnist, wanted=1, name="Another")
            await wait_until_async(lambda: trainer_job(admin), 30, "the tenth started no job")
            job, _ = await wait_for_job(admin)
            assert (job["trigger"], job["state"], job["opened_round"]) == (
                "automatic",
                "succeeded",
                None,
            )
            models = {
                m["version"]: m["status"] for m in (await admin.get("/api/admin/models")).json()
            }
            assert models == {"v1": "serving", "v2": "candidate"}
            assert (await admin.get("/healthz")).json()["model_version"] == "v1"

            # No new drawings since that job: no second one.
            await looks.settled()
            assert (await admin.get("/api/admin/trainer")).json()["id"] == job["id"]

            # The admin opens the candidate, then goes back to v1: each opens a new round.
            opened = await admin.post("/api/admin/models/v2/rollback")
            assert (opened.json()["number"], opened.json()["model_version"]) == (2, "v2")
            back = await admin.post("/api/admin/models/v1/rollback")
            assert (back.json()["number"], back.json()["model_version"]) == (3, "v1")
            models = {
                m["version"]: m["status"] for m in (await admin.get("/api/admin/models")).json()
            }
            assert models == {"v1": "serving", "v2": "retired"}
            assert (await admin.get("/healthz")).json()["model_version"] == "v1"
