"""Challenges through the admin API and the websocket: an admin attaches a prompt to the round,
every player hears of it, and a claim that meets it earns the bonus once it is VERIFIED (not on
submit), once per player per prompt; bad prompts are refused and change nothing."""

from __future__ import annotations

from typing import Any

import httpx
from consensus_helpers import next_of
from live_server import SEVEN, ThreadServer, admin_headers, db_rows, join


async def stats(http: httpx.AsyncClient, player_id: int) -> dict[str, Any]:
    answer: dict[str, Any] = (await http.get(f"/api/players/{player_id}/stats")).json()
    return answer


async def test_a_verified_claim_that_meets_a_prompt_earns_its_bonus_once(
    server: ThreadServer,
) -> None:
    ada, welcome = await join(server.ws, "Ada")
    assert welcome["challenges"] == {"round_id": 1, "challenges": [], "met": []}
    guess = await ada.request({"type": "predict", "id": "p", "drawing": SEVEN}, "prediction")
    claimed = (guess["label"] + 1) % 10
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as http:
        added = await http.post(
            "/api/admin/rounds/1/challenges", json={"label": claimed, "bonus": 25}
        )
        assert added.status_code == 201, added.text
        prompt = added.json()
        assert prompt["text"] == f"Fool it with {'an' if claimed == 8 else 'a'} {claimed}"
        pushed = await next_of(ada, "challenges")
        assert pushed["round_id"] == 1 and pushed["challenges"] == [prompt]

        submit = {"type": "submit", "drawing": SEVEN, "label": claimed}
        first = await ada.request({**submit, "id": "s1"}, "submitted")
        assert first["outcome"] == "pending"
        assert (await stats(http, welcome["player"]["id"]))["all_score"] == 0  # not on submit

        decided = await http.post(
            f"/api/admin/review/{first['attempt_id']}", json={"label": claimed}
        )
        assert decided.json()["challenges"] == [prompt]
        settled = await next_of(ada, "claim_settled")
        assert settled["challenges"] == [prompt]
        after_first = await stats(http, welcome["player"]["id"])
        assert after_first["all_score"] == settled["points"] + 25

        # The same prompt met again: the claim's points, no second bonus.
        second = await ada.request({**submit, "id": "s2"}, "submitted")
        await http.post(f"/api/admin/review/{second['attempt_id']}", json={"label": claimed})
        again = await next_of(ada, "claim_settled")
        assert "challenges" not in again
        after_second = await stats(http, welcome["player"]["id"])
        assert after_second["all_score"] == after_first["all_score"] + again["points"]

        listed = (await http.get("/api/admin/rounds/1/challenges")).json()
        assert listed["challenges"] == [prompt]
        assert (await http.get("/api/challenges")).json()["challenges"] == [prompt]
    _, resumed = await join(server.ws, "Grace")
    assert resumed["challenges"]["met"] == []


async def test_a_rejected_claim_or_another_digit_earns_no_bonus(server: ThreadServer) -> None:
    ada, _ = await join(server.ws, "Ada")
    guess = await ada.request({"type": "predict", "id": "p", "drawing": SEVEN}, "prediction")
    claimed = (guess["label"] + 1) % 10
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as http:
        await http.post("/api/admin/rounds/1/challenges", json={"label": claimed})
        other = (claimed + 1) % 10 if (claimed + 1) % 10 != guess["label"] else (claimed + 2) % 10
        await http.post("/api/admin/rounds/1/challenges", json={"label": other})
        submitted = await ada.request(
            {"type": "submit", "id": "s", "drawing": SEVEN, "label": claimed}, "submitted"
        )
        # The crowd (here the admin) reads the model's digit: rejected, no bonus.
        decided = await http.post(
            f"/api/admin/review/{submitted['attempt_id']}", json={"label": guess["label"]}
        )
        assert decided.json()["outcome"] == "rejected_model_right"
        assert "challenges" not in decided.json()
    assert db_rows(server.data_dir, "SELECT count(*) FROM challenges_met") == [(0,)]


async def test_bad_prompts_are_refused_and_change_nothing(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as http:
        cases = [
            ({"label": 10}, 400),
            ({"label": "7"}, 400),
            ({"label": True}, 400),
            ({}, 400),
            ({"label": 3, "model_label": 3}, 400),
            ({"label": 3, "bonus": 0}, 400),
            ({"label": 3, "bonus": 10_000}, 400),
            ({"label": 3, "extra": 1}, 400),
        ]
        for body, status in cases:
            refused = await http.post("/api/admin/rounds/1/challenges", json=body)
            assert refused.status_code == status, (body, refused.text)
            assert refused.json()["error"]["code"] == "bad_request"
        missing = await http.post("/api/admin/rounds/99/challenges", json={"label": 3})
        assert missing.status_code == 404
        anonymous = await httpx.AsyncClient(base_url=server.http).post(
            "/api/admin/rounds/1/challenges", json={"label": 3}
        )
        assert anonymous.status_code == 401
        for _ in range(6):  # the rules' max_per_round
            assert (await http.post("/api/admin/rounds/1/challenges", json={"label": 3})).is_success
        over = await http.post("/api/admin/rounds/1/challenges", json={"label": 4})
        assert over.status_code == 400 and "at most 6" in over.json()["error"]["message"]
    assert db_rows(server.data_dir, "SELECT count(*) FROM challenges") == [(6,)]
