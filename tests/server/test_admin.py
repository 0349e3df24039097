"""Rounds through the admin API: list, open, close, launch the next round on a new model; every
client hears about each change; the admin token file is created once, private."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from data_dirs import LinearModelFactory, add_model
from live_server import (
    REPO,
    SEVEN,
    ThreadServer,
    admin_headers,
    free_port,
    join,
)

from server.config import DataLayout
from server.realtime.limits import Limits


async def test_rounds_move_and_everyone_is_told(
    server: ThreadServer, linear_onnx_model: LinearModelFactory
) -> None:
    player, _ = await join(server.ws, "Ada")
    watcher, _ = await join(server.ws, "Grace")
    add_model(server.data_dir, "v2", linear_onnx_model(seed=2))

    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as admin:
        created = await admin.post("/api/admin/rounds", json={"model_version": "v2"})
        assert created.status_code == 201, created.text
        second = created.json()
        assert (second["number"], second["state"], second["model_version"]) == (
            2,
            "scheduled",
            "v2",
        )

        opened = await admin.post(f"/api/admin/rounds/{second['id']}/open")
        assert opened.json()["state"] == "open"
        for client in (player, watcher):
            push = await client.reply("round")
            while push["round"]["number"] == 1:  # a repeat of the joined round: a harmless hint
                push = await client.reply("round")
            assert push["round"] == opened.json()

        rounds = (await admin.get("/api/admin/rounds")).json()
        assert [(r["number"], r["state"]) for r in rounds] == [(2, "open"), (1, "closing")]

        again = await admin.post("/api/admin/rounds/1/open")
        assert again.status_code == 409  # a round never goes back
        assert "cannot become open" in again.json()["error"]["message"]
        missing = await admin.post("/api/admin/rounds/99/open")
        assert missing.status_code == 404
        unknown_model = await admin.post("/api/admin/rounds", json={"model_version": "v9"})
        assert unknown_model.status_code == 409

    # The new round's model answers from now on, and submissions land in round 2.
    guess = await player.request({"type": "predict", "drawing": SEVEN}, "prediction")
    assert guess["model_version"] == "v2"
    submitted = await player.request({"type": "submit", "drawing": SEVEN, "label": 7}, "submitted")
    assert submitted["model_version"] == "v2"
    async with httpx.AsyncClient(base_url=server.http) as public:
        current = (await public.get("/api/round")).json()
        assert (current["number"], current["attempts"]) == (2, 1)
        assert [r["number"] for r in (await public.get("/api/rounds")).json()] == [2, 1]
        health = (await public.get("/healthz")).json()
        assert (health["status"], health["model_version"]) == ("ok", "v2")


async def test_create_and_open_at_once_uses_the_latest_model(
    server: ThreadServer, linear_onnx_model: LinearModelFactory
) -> None:
    add_model(server.data_dir, "v2", linear_onnx_model(seed=2))
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as admin:
        created = await admin.post("/api/admin/rounds", json={"open": True})
        assert created.status_code == 201, created.text
        assert (created.json()["model_version"], created.json()["state"]) == ("v2", "open")
        bad = await admin.post("/api/admin/rounds", json={"open": "yes"})
        assert bad.status_code == 400
        closed = await admin.post(
            f"/api/admin/rounds/{created.json()['id']}/close", json={"state": "closed"}
        )
        assert closed.json()["state"] == "closed"


def test_generated_admin_token_is_private_and_made_once(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FTM_ADMIN_TOKEN", raising=False)
    token_file = DataLayout(data_dir).admin_token_file
    with ThreadServer(data_dir, Limits()) as server:
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token in capsys.readouterr().err  # printed once
        ok = httpx.get(f"{server.http}/api/admin/rounds", headers=admin_headers(token))
        assert ok.status_code == 200
    with ThreadServer(data_dir, Limits()):
        assert token_file.read_text().strip() == token
        assert token not in capsys.readouterr().err  # not printed again


async def test_metrics_count_what_happened(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Ada")
    await client.request({"type": "predict", "drawing": SEVEN}, "prediction")
    await client.request({"type": "submit", "drawing": SEVEN, "label": 7}, "submitted")
    await client.request({"type": "submit", "drawing": SEVEN, "label": 12}, "submitted")
    text = httpx.get(f"{server.http}/metrics").text
    for line in (
        "ftm_connections 1.0",
        'ftm_messages_total{type="predict"} 1.0',
        'ftm_messages_total{type="submit"} 2.0',
        'ftm_prediction_seconds_count{kind="live"} 1.0',
        'ftm_prediction_seconds_count{kind="submit"} 1.0',
        'ftm_errors_total{code="bad_label"} 1.0',
    ):
        assert line in text, line
    assert "ftm_submissions_total{outcome=" in text


def test_starting_without_a_model_says_what_to_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "--data-dir", str(tmp_path), "serve",
         "--port", str(free_port())],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "fool-the-model ensure-model" in result.stderr.splitlines()[-1]


def test_the_serving_path_never_imports_torch() -> None:
    code = "import sys, server.app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60).returncode == 0


def test_the_browser_client_is_served_at_the_root(server: ThreadServer) -> None:
    page = httpx.get(f"{server.http}/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert httpx.get(f"{server.http}/no-such-page.html").status_code == 404
