"""Moderation and review through the admin API: a ban voids the player's pending votes, a
quarantine sends their claims to review, an admin decides a disputed claim, raw votes export."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from consensus_helpers import claim_task, counts, make_claim, next_of
from live_server import (
    SEVEN,
    ThreadServer,
    admin_headers,
    db_rows,
    join,
)

pytestmark = pytest.mark.consensus_rules


def consensus(data_dir: Path, attempt_id: int) -> dict[str, object]:
    row = db_rows(data_dir, "SELECT consensus FROM claims WHERE attempt_id = ?", (attempt_id,))
    return dict(json.loads(row[0][0]))


async def test_ban_quarantine_review_and_export(server: ThreadServer) -> None:
    data = server.data_dir
    ada, _, ada_claim = await make_claim(server.ws, "Ada")
    grace, grace_welcome = await join(server.ws, "Grace")
    task = await claim_task(grace, data)
    vote = {"type": "vote", "task_id": task["task_id"], "answer": ada_claim["label"]}
    assert (await grace.request(vote, "voted"))["type"] == "voted"
    counted = consensus(data, ada_claim["attempt_id"])
    assert [v["counted"] for v in counted["votes"]] == [True]
    assert counted["posterior"] != counted["prior"]
    mallory, mallory_welcome, mallory_claim = await make_claim(server.ws, "Mallory")

    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as http:
        assert (
            await http.get("/api/admin/review", headers={"Authorization": "x"})
        ).status_code == 401

        # Ban Grace: her vote stays on record (she cannot vote again) but no longer counts.
        grace_id = grace_welcome["player"]["id"]
        banned = await http.post(f"/api/admin/players/{grace_id}/ban")
        assert banned.json() == {
            "player_id": grace_id,
            "status": "banned",
            "votes_voided": 1,
            "claims_disputed": 0,
        }
        voided = consensus(data, ada_claim["attempt_id"])
        assert [v["counted"] for v in voided["votes"]] == [False]
        assert voided["posterior"] == voided["prior"]
        assert voided["outcome"] is None  # still pending, waiting for counted votes
        refused = await grace.request(
            {"type": "submit", "id": "s", "drawing": SEVEN, "label": 1}, "submitted"
        )
        assert refused["code"] == "banned"

        # Quarantine Mallory: her pending claim goes to admin review, and she is told.
        mallory_id = mallory_welcome["player"]["id"]
        moved = await http.post(f"/api/admin/players/{mallory_id}/quarantine")
        assert moved.json()["claims_disputed"] == 1
        disputed = await next_of(mallory, "claim_settled")
        assert disputed["attempt_id"] == mallory_claim["attempt_id"]
        assert disputed["outcome"] == "disputed"
        assert (await mallory.request({"type": "task", "id": "t"}, "task", "no_task"))[
            "type"
        ] == "no_task"  # quarantined: no tasks

        queue = (await http.get("/api/admin/review")).json()
        assert [c["attempt_id"] for c in queue] == [mallory_claim["attempt_id"]]
        item = queue[0]
        assert item["player"] == "Mallory"
        assert item["label"] == mallory_claim["label"]
        assert item["predicted"] == mallory_claim["prediction"]["label"]
        assert item["drawing"]["strokes"] and item["png"]

        # Bad decisions change nothing.
        before = counts(data)
        url = f"/api/admin/review/{mallory_claim['attempt_id']}"
        for body in ({"label": 11}, {"label": "7"}, {}, []):
            bad = await http.post(url, json=body)
            assert bad.status_code == 400, (body, bad.text)
        assert (await http.post("/api/admin/review/999999", json={"label": 1})).status_code == 404
        assert (await http.post(f"/api/admin/players/{mallory_id}/promote")).status_code == 404
        assert (await http.post("/api/admin/players/999999/ban")).status_code == 404
        assert counts(data) == before

        # The admin decides: Mallory's claim was right.
        decided = await http.post(url, json={"label": mallory_claim["label"]})
        assert decided.status_code == 200, decided.text
        assert decided.json()["outcome"] == "verified"
        pushed = await next_of(mallory, "claim_settled", lambda m: m["outcome"] != "disputed")
        assert pushed["outcome"] == "verified" and pushed["points"] > 0
        assert (await http.post(url, json={"label": 3})).status_code == 409
        assert (await http.get("/api/admin/review")).json() == []
        state = db_rows(
            data,
            "SELECT state, by_admin FROM claims WHERE attempt_id = ?",
            (mallory_claim["attempt_id"],),
        )
        assert state == [("verified", 1)]

        reinstated = await http.post(f"/api/admin/players/{mallory_id}/reinstate")
        assert reinstated.json()["status"] == "active"
        players = (await http.get("/api/admin/players", params={"query": "GRA"})).json()
        assert [(p["name"], p["status"]) for p in players] == [("Grace", "banned")]
        assert players[0]["gold_answered"] == 2

        export = await http.get("/api/admin/votes.jsonl")
        assert export.status_code == 200
        records = [json.loads(line) for line in export.text.splitlines()]
        assert [r["attempt_id"] for r in records] == [mallory_claim["attempt_id"]]
        assert records[0]["outcome"] == "verified"
        assert len(records[0]["player"]) == 16 and records[0]["player"] != str(mallory_id)
        assert records[0]["claimed_label"] == mallory_claim["label"]  # the dataset's names
        assert records[0]["round"] >= 1 and "round_id" not in records[0]
    for client in (ada, grace, mallory):
        await client.close()
