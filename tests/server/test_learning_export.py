"""The dataset export loads back and matches the database (CLI and admin HTTP); the registry
and the CLI tables on a game without any training."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from consensus_helpers import prepare
from data_dirs import LinearModelFactory, add_model
from live_server import (
    SEVEN,
    ThreadServer,
    admin_headers,
    db_rows,
    join,
)
from loop_helpers import rotated_digits, settle, submit_png, verify_by_votes
from PIL import Image

from game_rules.consensus import Outcome
from server.cli import main
from server.config import DataLayout
from server.mnist import Mnist
from server.pseudonyms import anonymous_player_id
from server.realtime.limits import Limits
from server.serving.model_files import read_card, write_card


@pytest.fixture
def limits() -> Limits:
    return Limits(submit_burst=1000, submit_per_second=1000)


async def cli(argv: list[str]) -> int:
    """`fool-the-model ARGV` (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, argv)


async def seed_game(server: ThreadServer, mnist: Mnist) -> dict[int, tuple[str, int | None]]:
    """Forty drawings (PNGs and strokes) with every kind of outcome; attempt id → (outcome,
    consensus label)."""
    client, _ = await join(server.ws, "Ada")
    for image, label in rotated_digits(mnist, 36):
        await submit_png(client, image, label)
    for label in (7, 1, 3, 4):
        reply = await client.request(
            {"type": "submit", "drawing": SEVEN, "label": label}, "submitted"
        )
        assert reply["type"] == "submitted", reply
    await client.close()
    claims = [
        row[0] for row in db_rows(server.data_dir, "SELECT attempt_id FROM claims ORDER BY 1")
    ]
    assert len(claims) >= 12, "the linear model agreed with too many drawings"
    for attempt_id in claims[:8]:
        (claimed,) = db_rows(
            server.data_dir, "SELECT label FROM attempts WHERE id = ?", (attempt_id,)
        )[0]
        settle(server.data_dir, int(attempt_id), Outcome.VERIFIED, int(claimed), 0.8)
    settle(server.data_dir, int(claims[8]), Outcome.RELABELLED, 2, 0.7)
    settle(server.data_dir, int(claims[9]), Outcome.REJECTED_NOT_DIGIT, 10, 0.9)
    expected: dict[int, tuple[str, int | None]] = {}
    for attempt_id, outcome, state, label in db_rows(
        server.data_dir,
        "SELECT a.id, a.outcome, c.state, c.label FROM attempts a"
        " LEFT JOIN claims c ON c.attempt_id = a.id",
    ):
        if outcome == "model_won":
            expected[int(attempt_id)] = ("model_won", None)
        else:
            settled = state in ("verified", "relabelled")
            expected[int(attempt_id)] = (str(state), int(label) if settled else None)
    return expected


async def test_the_export_loads_back_and_matches_the_database(
    server: ThreadServer, mnist: Mnist, tmp_path: Path
) -> None:
    expected = await seed_game(server, mnist)
    wanted = {i: e for i, e in expected.items() if e[0] in ("verified", "relabelled")}
    out = tmp_path / "export"
    argv = ["--data-dir", str(server.data_dir), "export", "--out", str(out)]
    assert await cli([*argv, "--outcome", "verified", "--outcome", "relabelled"]) == 0

    folder = out / "imagefolder" / "round_1"
    metadata = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert {m["attempt_id"]: (m["outcome"], m["label"]) for m in metadata} == wanted
    stored = {
        int(i): (np.frombuffer(image, "<f4").reshape(28, 28), label, predicted, player)
        for i, image, label, predicted, player in db_rows(
            server.data_dir, "SELECT id, image, label, predicted, player_id FROM attempts"
        )
    }
    for m in metadata:
        image, claimed, predicted, _ = stored[m["attempt_id"]]
        assert m["file_name"] == f"{m['label']}/{m['attempt_id']}.png"
        png = np.asarray(Image.open(folder / m["file_name"]), dtype=np.float32) / 255
        assert png.shape == (28, 28) and np.abs(png - image).max() <= 1 / 255
        assert (m["claimed_label"], m["model_label"]) == (claimed, predicted)
        assert m["round"] == 1 and m["model_version"] == "v1"
        assert 0.7 <= m["consensus_strength"] <= 0.8 + 1e-9
        assert len(m["player"]) == 16 and m["player"] != "1"
        assert len(m["model_probs"]) == 10 and np.argmax(m["model_probs"]) == predicted

    arrays = np.load(out / "arrays.npz")
    assert arrays["image"].shape == (len(wanted), 28, 28) and arrays["image"].dtype == np.uint8
    assert dict(zip(arrays["attempt_id"].tolist(), arrays["label"].tolist(), strict=True)) == {
        i: label for i, (_, label) in wanted.items()
    }
    strokes = (out / "strokes.ndjson").read_text().splitlines()
    assert len(strokes) == sum(
        1
        for i in wanted
        if db_rows(server.data_dir, "SELECT strokes FROM attempts WHERE id = ?", (i,))[0][0]
    )
    assert (out / "README.md").read_text().startswith("---\n")

    # One format, one round: every settled outcome by default, pending ones when asked.
    settled = {i for i, (outcome, _) in expected.items() if outcome not in ("pending", "disputed")}
    only = tmp_path / "numpy-only"
    assert await cli([*argv[:-1], str(only), "--format", "numpy", "--round", "1"]) == 0
    assert sorted(p.name for p in only.iterdir()) == ["README.md", "arrays.npz", "votes.jsonl"]
    assert set(np.load(only / "arrays.npz")["attempt_id"].tolist()) == settled
    assert await cli([*argv[:-1], str(only), "--format", "numpy"]) == 2  # never overwrites
    assert await cli([*argv[:-1], str(tmp_path / "x"), "--outcome", "won"]) == 2  # a usage mistake
    pending = tmp_path / "pending"
    assert await cli([*argv[:-1], str(pending), "--outcome", "pending"]) == 0
    rows = (pending / "imagefolder" / "round_1" / "metadata.jsonl").read_text().splitlines()
    assert len(rows) == len(expected) - len(settled)


async def test_an_empty_selection_is_a_one_line_error(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    argv = ["--data-dir", str(server.data_dir), "export", "--out", str(out), "--round", "99"]
    assert await cli(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: nothing to export: no drawing in round 99 (")
    assert "\n" not in error
    assert not out.exists()


async def test_the_raw_votes_join_the_drawings_with_one_pseudonym_per_player(
    data_dir: Path, mnist: Mnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(data_dir)  # three trusted votes settle a claim
    monkeypatch.setenv("FTM_ADMIN_TOKEN", "test-admin-token")
    fast = Limits(
        **{
            f"{kind}_{rate}": 10_000
            for kind in ("messages", "predict", "submit", "tasks")
            for rate in ("burst", "per_second")
        }
    )
    with ThreadServer(data_dir, fast) as server:
        client, _ = await join(server.ws, "Ada")
        for image, label in rotated_digits(mnist, 12):
            await submit_png(client, image, label)
        await client.close()
        assert await verify_by_votes(server, voters=3) > 0
    out = tmp_path / "export"
    assert await cli(["--data-dir", str(data_dir), "export", "--out", str(out)]) == 0

    salt = DataLayout(data_dir).pseudonym_salt.read_bytes()
    stored = db_rows(data_dir, "SELECT attempt_id, voter_id, answer, counted FROM votes")
    votes = [json.loads(line) for line in (out / "votes.jsonl").read_text().splitlines()]
    assert sorted(
        (v["attempt_id"], v["voter"], v["answer"], v["counted"]) for v in votes
    ) == sorted(
        (a, anonymous_player_id(voter, salt), answer, bool(counted))
        for a, voter, answer, counted in stored
    )
    drawings = {}
    for line in (out / "imagefolder" / "round_1" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        drawings[row["attempt_id"]] = row
    for vote in votes:
        drawing = drawings[vote["attempt_id"]]
        shared = ("round", "claimed_label", "player")
        assert {k: vote[k] for k in shared} == {k: drawing[k] for k in shared}
        assert drawing["outcome"] == "verified" and drawing["vote_counts"][vote["answer"]] >= 1


async def test_the_admin_export_is_a_zip_and_refuses_bad_queries(
    server: ThreadServer, mnist: Mnist
) -> None:
    expected = await seed_game(server, mnist)
    verified = sorted((i, e[1]) for i, e in expected.items() if e[0] == "verified")
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as admin:
        reply = await admin.get("/api/admin/export?format=imagefolder&outcome=verified&round=1")
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(reply.content))
        names = archive.namelist()
        assert sorted(n for n in names if n.endswith(".png")) == sorted(
            f"imagefolder/round_1/{label}/{i}.png" for i, label in verified
        )
        assert "arrays.npz" not in names and "strokes.ndjson" not in names
        lines = archive.read("imagefolder/round_1/metadata.jsonl").decode().splitlines()
        assert len(lines) == len(verified)

        everything = zipfile.ZipFile(io.BytesIO((await admin.get("/api/admin/export")).content))
        settled = [e for e in expected.values() if e[0] not in ("pending", "disputed")]
        assert len(np.load(io.BytesIO(everything.read("arrays.npz")))["label"]) == len(settled)

        for query in ("format=zip", "round=one", "outcome=won", "format=numpy,gif"):
            bad = await admin.get(f"/api/admin/export?{query}")
            assert bad.status_code == 400, query
        assert (
            await admin.get("/api/admin/export", headers={"authorization": ""})
        ).status_code == 401
    # The work directory goes once each response is sent (a background task after the body).
    for _ in range(100):
        leftovers = [p.name for p in server.data_dir.iterdir() if p.name.startswith("export-")]
        if not leftovers:
            break
        await asyncio.sleep(0.05)
    assert leftovers == []


async def test_the_registry_knows_the_bootstrap_model_and_refuses_rejected_ones(
    data_dir: Path,
    limits: Limits,
    linear_onnx_model: LinearModelFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout = DataLayout(data_dir)
    add_model(data_dir, "v2", linear_onnx_model(seed=2))
    card = read_card(layout.model_card_path("v2"))
    card.gate = {"passed": False, "reason": "MNIST accuracy 0.1 < floor 0.985"}
    write_card(card, layout.model_card_path("v2"))
    add_model(data_dir, "v3", linear_onnx_model(seed=3))  # fine-tuned, never judged by the gate
    card = read_card(layout.model_card_path("v3"))
    card.parent = "v1"
    write_card(card, layout.model_card_path("v3"))
    monkeypatch.setenv("FTM_ADMIN_TOKEN", "test-admin-token")
    with ThreadServer(data_dir, limits) as server:
        async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as admin:
            assert (await admin.get("/healthz")).json()["model_version"] == "v1"
            models = (await admin.get("/api/admin/models")).json()
            assert [(m["version"], m["status"]) for m in models] == [
                ("v1", "serving"),
                ("v2", "rejected"),
                ("v3", "rejected"),
            ]
            created = await admin.post("/api/admin/rounds", json={"open": True})
            assert created.json()["model_version"] == "v1"  # the newest model that may serve
            missing = await admin.post("/api/admin/models/v7/rollback")
            assert missing.status_code == 404
            serving = await admin.post("/api/admin/models/v1/rollback")
            assert serving.json()["error"]["code"] == "already_serving"
            trainer = await admin.get("/api/admin/trainer")
            assert trainer.json() == {}
            for method, path in [
                ("POST", "/api/admin/rounds/next"),
                ("GET", "/api/admin/trainer"),
                ("POST", "/api/admin/trainer/cancel"),
                ("GET", "/api/admin/models"),
                ("POST", "/api/admin/models/v1/rollback"),
            ]:
                anonymous = await admin.request(method, path, headers={"authorization": "Bearer x"})
                assert anonymous.status_code == 401, path
            assert (await admin.get("/api/admin/trainer")).json() == {}  # nothing was launched
            assert (await admin.get("/api/models/metrics")).json()[0]["version"] == "v1"


async def test_the_cli_tables(
    server: ThreadServer,
    mnist: Mnist,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = await seed_game(server, mnist)
    assert await cli(["--data-dir", str(server.data_dir), "rounds"]) == 0
    table = capsys.readouterr().out.splitlines()
    claims = sum(1 for outcome, _ in expected.values() if outcome != "model_won")
    verified = sum(1 for outcome, _ in expected.values() if outcome == "verified")
    assert table[0].split() == [
        "round",
        "state",
        "model",
        "attempts",
        "claims",
        "verified",
        "MER",
        "vMER",
    ]
    assert table[2].split() == [
        "1",
        "open",
        "v1",
        str(len(expected)),
        str(claims),
        str(verified),
        f"{100 * claims / len(expected):.1f}%",
        f"{100 * verified / len(expected):.1f}%",
    ]
    assert await cli(["--data-dir", str(server.data_dir), "models"]) == 0
    models = capsys.readouterr().out.splitlines()
    assert models[2].split()[:3] == ["v1", "serving", "–"]
    monkeypatch.delenv("FTM_DATABASE_URL", raising=False)  # the data directory's own SQLite
    (server.data_dir / "nowhere").mkdir()
    assert await cli(["--data-dir", str(server.data_dir / "nowhere"), "rounds"]) == 1
    assert "No game database" in capsys.readouterr().err
