"""No input can hurt another player (issue 12): one player's drawings, frames or connections never
cost another player a reply."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import (
    ONE,
    REPLY_TIMEOUT,
    SEVEN,
    Client,
    ProcessServer,
    ThreadServer,
    db_rows,
    join,
    open_client,
    row_counts,
    spectate,
)
from websockets.exceptions import ConnectionClosed

from server.app import STATIC_DIR
from server.realtime.limits import ConnectionCaps, Limits
from server.web.http_timeouts import HeaderTimeoutProtocol

POISON = {"strokes": [[[0, 0], [5e-324, 0]]]}  # a denormal wide: once broke its whole batch


async def well_behaved(url: str, name: str, guesses: int) -> list[dict[str, Any]]:
    """A player who guesses `guesses` times at the browser's pace (~10 Hz, waiting for each
    answer), then submits once: the errors they got."""
    client, _ = await join(url, name)
    errors = []
    for n in range(guesses):
        reply = await client.request(
            {"type": "predict", "id": f"g{n}", "drawing": SEVEN}, "prediction"
        )
        if reply["type"] == "error":
            errors.append(reply)
        await asyncio.sleep(0.1)
    submitted = await client.request(
        {"type": "submit", "id": "s", "drawing": ONE, "label": 1}, "submitted"
    )
    if submitted["type"] == "error":
        errors.append(submitted)
    await client.close()
    return errors


async def test_a_poisoned_drawing_costs_other_players_nothing(server: ThreadServer) -> None:
    attacker, _ = await join(server.ws, "Mallory")
    done = asyncio.Event()

    async def attack() -> int:
        sent = 0
        while not done.is_set() and sent < 500:  # 10 frames/s, under the rate limit
            await attacker.send({"type": "predict", "id": f"p{sent}", "drawing": POISON})
            sent += 1
            await asyncio.sleep(0.1)
        return sent

    attack_task = asyncio.create_task(attack())
    try:
        results = await asyncio.gather(
            *(well_behaved(server.ws, f"Player {n}", 25) for n in range(3))
        )
    finally:
        done.set()
    assert await attack_task > 0
    assert [error for errors in results for error in errors] == []
    answer = await attacker.request(
        {"type": "predict", "id": "last", "drawing": POISON}, "prediction"
    )
    while answer.get("id") != "last":  # skip the answers to the attack's earlier frames
        answer = await attacker.reply("prediction")
    assert answer["type"] == "prediction", answer  # drawn as a dot: a drawing like any other


# --- the parser ----------------------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("frame", "code", "id"),
    [
        (DEEP, "bad_json", None),
        ("[" * 5000, "bad_json", None),  # never closed
        ('{"type": "ping", "id": "d1", "x": ' + DEEP + "}", "bad_json", "d1"),
        ('{"type": "predict", "id": "d2", "drawing": {"strokes": ' + DEEP + "}}", "bad_json", "d2"),
        ('{"type": "submit", "id": "d3", "label": 1, "drawing": ' + DEEP + "}", "bad_json", "d3"),
        ('{"type": "ping", "type": "predict", "id": "t1"}', "bad_message", "t1"),
        ('{"type": "predict", "id": "t2", "type": "ping"}', "bad_message", "t2"),
    ],
    ids=["deep", "unclosed", "deep ping", "deep predict", "deep submit", "two types", "predict+"],
)
async def test_a_frame_the_parser_refuses_gets_a_coded_error_and_the_connection_lives(
    server: ThreadServer, frame: str, code: str, id: str | None
) -> None:
    client, _ = await join(server.ws, "Ada")
    refused = await client.request(frame, "x")
    assert (refused["type"], refused["code"], refused["id"]) == ("error", code, id)
    assert await client.alive()
    guess = await client.request({"type": "predict", "id": "after", "drawing": SEVEN}, "prediction")
    assert (guess["type"], guess["id"]) == ("prediction", "after")  # live guesses still flow


async def test_a_png_that_is_not_text_is_told_about_png(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Ada")
    refused = await client.request(
        {"type": "submit", "id": "p", "drawing": {"png": 12345}, "label": 1}, "submitted"
    )
    assert refused["code"] == "bad_message"
    assert refused["message"].startswith("drawing.png:")


async def test_a_rate_limited_guess_echoes_its_id_and_a_real_wait(data_dir: Path) -> None:
    with ThreadServer(data_dir, Limits(predict_burst=1, predict_per_second=0.5)) as server:
        client, _ = await join(server.ws, "Ada")
        await client.send({"type": "predict", "id": "first", "drawing": SEVEN})
        await client.send({"type": "predict", "id": "second", "drawing": SEVEN})
        refused = await client.reply("x")
        assert (refused["code"], refused["id"]) == ("rate_limited", "second")
        wait = float(refused["message"].rsplit("in ", 1)[1].removesuffix(" s."))
        assert wait >= 0.1


# --- connections ---------------------------------------------------------------------------


async def close_of(client: Client) -> tuple[int | None, str | None]:
    """How the server closed the connection (it must close it, before the reply timeout)."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await client.recv()
    return client.connection.close_code, client.connection.close_reason


async def test_a_connection_that_never_says_hello_is_closed(data_dir: Path) -> None:
    with ThreadServer(data_dir, Limits(hello_seconds=0.5)) as server:
        joined, _ = await join(server.ws, "Ada")  # a player who said hello stays
        silent = await open_client(server.ws)
        chatty = await open_client(server.ws)  # frames other than hello do not buy time
        for n in range(3):
            await chatty.send({"type": "ping", "id": str(n)})
        assert await close_of(silent) == (1008, "say hello within 0.5 s")
        assert (await close_of(chatty))[0] == 1008
        assert await joined.alive()  # opened first: its deadline, had it one, is past


async def test_connections_are_capped_per_address_and_in_all(data_dir: Path) -> None:
    limits = Limits(max_connections=3, max_connections_per_address=2, uncapped_networks=())
    with ThreadServer(data_dir, limits) as server:
        first, _ = await join(server.ws, "Ada")
        second = await spectate(server.ws)
        third = await open_client(server.ws)
        assert await close_of(third) == (
            1008,
            "too many connections from your address; close some tabs",
        )
        await second.close()
        caps = server.app.state.server.caps
        async with asyncio.timeout(REPLY_TIMEOUT):
            while caps.total > 1:  # the server notices the close
                await asyncio.sleep(0.01)
        again = await spectate(server.ws)  # a closed connection frees its place
        assert await again.alive() and await first.alive()


async def test_the_total_cap_counts_every_address(data_dir: Path) -> None:
    with ThreadServer(data_dir, Limits(max_connections=2)) as server:
        clients = [await spectate(server.ws) for _ in range(2)]
        refused = await open_client(server.ws)
        assert (await close_of(refused))[0] == 1013
        assert all([await client.alive() for client in clients])


async def test_headers_that_never_finish_are_cut_off(
    server: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HeaderTimeoutProtocol, "header_seconds", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and nothing more
    await writer.drain()
    async with asyncio.timeout(REPLY_TIMEOUT):
        assert await reader.read() == b""  # closed by the server
    writer.close()


# --- idempotent submissions and votes ------------------------------------------------------


async def test_a_resent_submission_gets_the_original_acknowledgement(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Ada")
    submit = {"type": "submit", "id": "s1", "drawing": SEVEN, "label": 1}
    first = await client.request(submit, "submitted")
    again = await client.request(submit, "submitted")
    assert first["type"] == "submitted" and again == first
    assert row_counts(server.data_dir)["attempts"] == 1
    other = await client.request({**submit, "label": 2}, "submitted")  # the id reused: new
    assert other["attempt_id"] != first["attempt_id"]
    someone, _ = await join(server.ws, "Grace")  # ids are per player
    theirs = await someone.request(submit, "submitted")
    assert theirs["attempt_id"] not in (first["attempt_id"], other["attempt_id"])
    assert row_counts(server.data_dir)["attempts"] == 3


async def test_kill_9_during_submissions_then_resends_store_each_exactly_once(
    data_dir: Path,
) -> None:
    server = ProcessServer(data_dir).start()
    try:
        ada, welcome = await join(server.ws, "Ada")
        submissions = [
            {"type": "submit", "id": f"s{n}", "drawing": SEVEN, "label": n} for n in range(5)
        ]
        for submission in submissions:  # steady: the burst the rate limit allows
            await ada.send(submission)
        acknowledged = {(await ada.reply("submitted"))["id"]}
        server.kill()  # with the others in flight: committed or not, never acknowledged
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:
                acknowledged.add((await ada.reply("submitted"))["id"])
        stored_before = row_counts(data_dir)["attempts"]
        assert len(acknowledged) <= stored_before <= len(submissions)

        server.start()
        again = await open_client(server.ws)
        await again.request({"type": "hello", "v": 1, "token": welcome["token"]}, "welcome")
        acks = [await again.request(s, "submitted") for s in submissions]  # the client resends
    finally:
        server.kill()
    assert [ack["type"] for ack in acks] == ["submitted"] * len(submissions)
    stored = db_rows(data_dir, "SELECT id, label FROM attempts ORDER BY id")
    assert sorted((ack["attempt_id"], ack["label"]) for ack in acks) == stored  # exactly


# --- HTTP: headers, hosts, errors ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/admin.html", "/js/main.js", "/healthz", "/nowhere"])
async def test_every_response_carries_the_security_headers(server: ThreadServer, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.get(path)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_pages_have_no_inline_script_or_style() -> None:
    for page in STATIC_DIR.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page  # CSP would block it
        assert "<style" not in html and " style=" not in html, page
        assert not re.search(r"\son[a-z]+=", html), page


async def test_a_host_it_does_not_know_is_refused(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
            assert (await http.get("/healthz", headers={"Host": host})).status_code == 200
        rebound = await http.get("/healthz", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        assert rebound.headers["x-frame-options"] == "DENY"
    # And the websocket: the upgrade is refused before any session exists.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    async with asyncio.timeout(REPLY_TIMEOUT):
        status_line = await reader.readline()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 400")


async def test_a_configured_host_is_served(data_dir: Path) -> None:
    with ThreadServer(data_dir, Limits(), hosts=("game.example.org",)) as server:
        async with httpx.AsyncClient(base_url=server.http) as http:
            answer = await http.get("/healthz", headers={"Host": "game.example.org"})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/api/nowhere", 404, "not_found"),
        ("GET", "/api/players/99999999999999999999999/stats", 404, "not_found"),
        ("GET", "/api/players/-1/stats", 404, "not_found"),
        ("POST", "/api/round", 405, "method_not_allowed"),
        ("DELETE", "/", 405, "method_not_allowed"),
    ],
)
async def test_http_errors_are_json(
    server: ThreadServer, method: str, path: str, status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_proxy_or_the_machine_itself_counts_only_toward_the_total() -> None:
    caps = ConnectionCaps(Limits(max_connections=10, max_connections_per_address=2))
    for address in ("203.0.113.9", "203.0.113.9", "172.18.0.5", "172.18.0.5", "172.18.0.5"):
        assert caps.admit(address) is None
    assert caps.admit("203.0.113.9") == (
        1008,
        "too many connections from your address; close some tabs",
    )
    assert caps.admit("::1") is None and caps.admit("127.0.0.1") is None
    caps.release("203.0.113.9")
    assert caps.admit("203.0.113.9") is None
    assert caps.total == 7
