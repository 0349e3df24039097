"""Every malformed, oversized, out-of-order or unauthorised input gets its error code, the
connection survives where it should, and the database does not change."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import (
    ONE,
    SEVEN,
    ThreadServer,
    admin_headers,
    configured,
    join,
    open_client,
    row_counts,
)
from PIL import Image
from starlette.applications import Starlette
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed

from server.app import create_app
from server.realtime.limits import Limits


def blank_png() -> str:
    buffer = io.BytesIO()
    Image.new("L", (100, 100), 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


BAD_MESSAGES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("invalid JSON", "{not json", "bad_json"),
    ("JSON that is not an object", "[1, 2]", "bad_json"),
    ("no type", {"id": "x"}, "bad_message"),
    ("unknown type", {"type": "teleport", "id": "x"}, "unknown_type"),
    (
        "label as a string",
        {"type": "submit", "id": "x", "drawing": ONE, "label": "7"},
        "bad_message",
    ),
    (
        "label as a float",
        {"type": "submit", "id": "x", "drawing": ONE, "label": 7.0},
        "bad_message",
    ),
    (
        "label as a bool",
        {"type": "submit", "id": "x", "drawing": ONE, "label": True},
        "bad_message",
    ),
    (
        "strokes not a list",
        {"type": "predict", "id": "x", "drawing": {"strokes": "1,2"}},
        "bad_message",
    ),
    (
        "point with three coordinates",
        {"type": "predict", "id": "x", "drawing": {"strokes": [[[1, 2, 3]]]}},
        "bad_message",
    ),
    (
        "drawing with both forms",
        {"type": "predict", "id": "x", "drawing": {**ONE, "png": ""}},
        "bad_message",
    ),
    ("an extra field", {"type": "ping", "id": "x", "admin": True}, "bad_message"),
    ("label above 9", {"type": "submit", "id": "x", "drawing": ONE, "label": 10}, "bad_label"),
    ("label below 0", {"type": "submit", "id": "x", "drawing": ONE, "label": -1}, "bad_label"),
    (
        "PNG that is not base64",
        {"type": "submit", "id": "x", "drawing": {"png": "%%%"}, "label": 1},
        "bad_drawing",
    ),
    (
        "PNG that is not an image",
        {
            "type": "submit",
            "id": "x",
            "drawing": {"png": base64.b64encode(b"GIF89a nope").decode()},
            "label": 1,
        },
        "bad_drawing",
    ),
    (
        "truncated PNG",
        {"type": "submit", "id": "x", "drawing": {"png": blank_png()[:60]}, "label": 1},
        "bad_drawing",
    ),
    (
        "PNG with no ink",
        {"type": "submit", "id": "x", "drawing": {"png": blank_png()}, "label": 1},
        "empty_drawing",
    ),
    (
        "no strokes",
        {"type": "submit", "id": "x", "drawing": {"strokes": []}, "label": 1},
        "empty_drawing",
    ),
    (
        "too many strokes",
        {
            "type": "predict",
            "id": "x",
            "drawing": {"strokes": [[[i, i], [i + 1, i]] for i in range(65)]},
        },
        "drawing_too_large",
    ),
    ("second hello", {"type": "hello", "id": "x", "v": 1, "name": "Someone"}, "already_joined"),
    (
        "vote on a task never given",
        {"type": "vote", "id": "x", "task_id": "abc", "answer": 3},
        "unknown_task",
    ),
]


@pytest.mark.parametrize(
    ("case", "message", "code"), BAD_MESSAGES, ids=[c[0] for c in BAD_MESSAGES]
)
async def test_bad_message_gets_its_code_and_changes_nothing(
    server: ThreadServer, case: str, message: dict[str, Any] | str, code: str
) -> None:
    client, _ = await join(server.ws, "Ada")
    before = row_counts(server.data_dir)
    refused = await client.request(message, "prediction", "submitted", "welcome")
    assert refused["type"] == "error"
    assert refused["code"] == code
    assert refused["message"]
    if isinstance(message, dict) and "type" in message:
        assert refused["id"] == "x"  # echoed so the client can match it
    assert await client.alive()
    assert row_counts(server.data_dir) == before


async def test_hello_must_come_first_and_speak_our_version(server: ThreadServer) -> None:
    client = await open_client(server.ws)
    early = await client.request({"type": "submit", "id": "s", "drawing": ONE, "label": 1}, "x")
    assert (early["code"], early["id"]) == ("hello_first", "s")
    future = await client.request({"type": "hello", "v": 3, "name": "Ada"}, "welcome")
    assert future["code"] == "unsupported_version"
    both = await client.request({"type": "hello", "v": 1, "name": "Ada", "spectator": True}, "x")
    assert both["code"] == "bad_message"
    assert (await client.request({"type": "hello", "v": 1, "name": "Ada"}, "welcome"))["type"] == (
        "welcome"
    )
    assert row_counts(server.data_dir)["players"] == 1


async def test_oversized_frame_closes_with_1009(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Ada")
    before = row_counts(server.data_dir)
    huge = {"type": "predict", "id": "x", "drawing": {"png": "A" * 70_000}}
    await client.send(huge)
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert row_counts(server.data_dir) == before
    # Others are unaffected.
    other, _ = await join(server.ws, "Grace")
    assert await other.alive()


async def test_submit_without_an_open_round_is_refused(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Ada")
    async with httpx.AsyncClient(base_url=server.http, headers=admin_headers()) as admin:
        closed = await admin.post("/api/admin/rounds/1/close")
        assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closing"
    push = await client.reply("round")
    assert push["round"]["state"] == "closing"
    before = row_counts(server.data_dir)
    refused = await client.request({"type": "submit", "id": "s", "drawing": SEVEN, "label": 7}, "x")
    assert (refused["code"], refused["id"]) == ("no_open_round", "s")
    # Live guesses still work between rounds.
    assert (await client.request({"type": "predict", "drawing": SEVEN}, "prediction"))[
        "label"
    ] in range(10)
    assert row_counts(server.data_dir) == before


def api_requests(app: Starlette, prefix: str = "/api/") -> list[tuple[str, str]]:
    """Every API route under `prefix` as (method, path), its path parameters filled in."""
    return [
        (method, re.sub(r"\{[^}]*\}", "1", route.path))
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(prefix)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + "x" * 20},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong token", "wrong scheme", "no token"],
)
async def test_admin_needs_the_token(server: ThreadServer, headers: dict[str, str]) -> None:
    before = row_counts(server.data_dir)
    async with httpx.AsyncClient(base_url=server.http, headers=headers) as admin:
        for method, path in api_requests(server.app, "/api/admin/"):
            response = await admin.request(method, path)
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == "unauthorized"
    assert row_counts(server.data_dir) == before
    async with httpx.AsyncClient(base_url=server.http) as public:
        assert (await public.get("/api/round")).json()["state"] == "open"


async def test_until_the_game_runs_every_api_route_says_starting(tmp_path: Path) -> None:
    app = create_app(configured(tmp_path))  # its lifespan (which starts the game) never runs here
    requests = api_requests(app)
    assert ("POST", "/api/admin/rounds/next") in requests
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=admin_headers()
    ) as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (503, {"status": "starting"})
        for method, path in requests:
            response = await client.request(method, path)
            if path == "/api/openapi.json":  # a document about the API, not the game's state
                assert response.status_code == 200
                continue
            assert response.status_code == 503, (method, path)
            assert response.json()["error"]["code"] == "starting"


async def test_a_flood_is_rate_limited_and_the_connection_survives(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Ada")
    burst = int(Limits().submit_burst) + 5
    for i in range(burst):
        await client.send({"type": "submit", "id": f"s{i}", "drawing": SEVEN, "label": 7})
    replies = [await client.reply("submitted") for _ in range(burst)]
    limited = [r for r in replies if r["type"] == "error"]
    assert limited and all(r["code"] == "rate_limited" for r in limited)
    assert "try again in" in limited[0]["message"]
    accepted = [r for r in replies if r["type"] == "submitted"]
    assert len(accepted) == Limits().submit_burst  # within a second at most one more token
    assert await client.alive()
    assert row_counts(server.data_dir)["attempts"] == len(accepted)


async def test_ignoring_rate_limits_closes_with_1008(data_dir: Path) -> None:
    with ThreadServer(data_dir, Limits(max_strikes=10)) as server:
        client, _ = await join(server.ws, "Ada")
        with pytest.raises(ConnectionClosed) as closed:
            for i in range(500):
                await client.send({"type": "submit", "id": f"s{i}", "drawing": SEVEN, "label": 7})
            while True:
                await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert row_counts(server.data_dir)["attempts"] <= Limits().submit_burst + 1
        other, _ = await join(server.ws, "Grace")
        assert await other.alive()


async def test_a_foreign_origin_is_refused(server: ThreadServer) -> None:
    evil = await open_client(server.ws, origin="http://evil.example")
    with pytest.raises(ConnectionClosed) as closed:
        await evil.request({"type": "hello", "v": 1, "name": "Mallory"}, "welcome")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    same = await open_client(server.ws, origin=server.http)
    assert (await same.request({"type": "hello", "v": 1, "name": "Ada"}, "welcome"))["type"] == (
        "welcome"
    )
    assert row_counts(server.data_dir)["players"] == 1


def test_the_protocol_document_lists_every_code() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for _, _, code in BAD_MESSAGES:
        assert f"`{code}`" in doc, code
    for code in (
        "hello_first",
        "unsupported_version",
        "no_open_round",
        "rate_limited",
        "name_taken",
    ):
        assert f"`{code}`" in doc, code
