"""Protocol v2 against a real server: the drawing is sent in pieces, every guess is of exactly
the drawing the client has, anything out of step is answered `resync`, v1 clients keep working,
and a connection's held drawing is freed when it closes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from live_server import Client, ThreadServer, db_rows, open_client
from waiting import wait_until_async

A = [[10.0, 10.0], [60.0, 12.0], [30.0, 80.0], [28.5, 95.5]]
B = [[20.0, 45.0], [50.0, 44.0], [61.0, 43.5]]
SEVEN = {"strokes": [A, B]}


async def join_v2(url: str, name: str) -> Client:
    client = await open_client(url)
    welcome = await client.request({"type": "hello", "v": 2, "name": name}, "welcome")
    assert welcome["v"] == 2, welcome
    return client


async def held_count(server: ThreadServer) -> int:
    """How many drawings the server's model worker holds (asked on the server's own loop)."""
    game = server.app.state.server.game
    loop = game._tasks[0].get_loop()
    future = asyncio.run_coroutine_threadsafe(game.predictor.held_count(), loop)
    return await asyncio.wrap_future(future)


async def draw_seven(client: Client) -> dict[str, Any]:
    """SEVEN in four pieces, the last asking for a guess: the prediction."""
    await client.send({"type": "stroke_start", "seq": 1, "points": A[:2]})
    await client.send({"type": "points", "seq": 2, "points": A[2:]})
    await client.send({"type": "stroke_start", "seq": 3, "points": B[:1]})
    return await client.request(
        {"type": "points", "seq": 4, "points": B[1:], "guess": True, "id": "p4"}, "prediction"
    )


async def test_a_drawing_sent_in_pieces_is_guessed_as_the_same_drawing_sent_whole(
    server: ThreadServer,
) -> None:
    v2 = await join_v2(server.ws, "Ada")
    v1 = await open_client(server.ws)
    await v1.request({"type": "hello", "v": 1, "name": "Alan"}, "welcome")
    piecewise = await draw_seven(v2)
    whole = await v1.request({"type": "predict", "id": "w", "drawing": SEVEN}, "prediction")
    assert piecewise["id"] == "p4" and piecewise["seq"] == 4
    assert piecewise["label"] == whole["label"]
    assert piecewise["probs"] == pytest.approx(whole["probs"], abs=1e-4)  # (batch float noise)
    await v1.close()
    await v2.close()


@pytest.mark.parametrize(
    "wrong",
    [
        {"type": "points", "seq": 6, "points": [[5, 5]], "guess": True, "id": "gap"},
        {"type": "points", "seq": 4, "points": B[1:], "guess": True, "id": "duplicate"},
        {"type": "stroke_start", "seq": 2, "points": [[5, 5]], "guess": True, "id": "old"},
    ],
    ids=["gap", "duplicate", "old"],
)
async def test_a_message_out_of_step_gets_a_resync_never_a_guess(
    server: ThreadServer, wrong: dict[str, Any]
) -> None:
    client = await join_v2(server.ws, "Grace")
    await draw_seven(client)
    resync = await client.request(wrong, "resync", "prediction")
    assert resync == {"type": "resync", "id": wrong["id"], "seq": wrong["seq"]}
    # The "right" next message is refused too: the server holds nothing until the whole drawing.
    again = await client.request(
        {"type": "points", "seq": 5, "points": [[1, 1]], "guess": True, "id": "p5"},
        "resync",
        "prediction",
    )
    assert again["type"] == "resync"
    whole = await client.request(
        {"type": "drawing", "seq": 7, "strokes": [A, B], "guess": True, "id": "d7"}, "prediction"
    )
    assert whole["id"] == "d7" and whole["seq"] == 7
    assert await client.alive()
    await client.close()


async def test_a_bad_message_is_refused_and_changes_nothing(server: ThreadServer) -> None:
    client = await join_v2(server.ws, "Linus")
    await client.send({"type": "stroke_start", "seq": 1, "points": A})
    refused = await client.request(
        {"type": "points", "seq": 2, "points": [[1, 2, 3]], "id": "bad"}, "prediction"
    )
    assert refused["type"] == "error" and refused["code"] == "bad_message"
    assert refused["id"] == "bad"
    guess = await client.request(
        {"type": "points", "seq": 2, "points": [[40, 60]], "guess": True, "id": "ok"},
        "prediction",
    )
    assert guess["type"] == "prediction" and guess["seq"] == 2
    # `type` not first (not our client's spelling) is the same message.
    late = {"seq": 3, "guess": True, "id": "late-type", "type": "points", "points": [[9, 9]]}
    guess = await client.request(json.dumps(late), "prediction")
    assert guess["id"] == "late-type" and guess["seq"] == 3
    await client.close()


async def test_submit_refers_to_the_held_drawing(server: ThreadServer) -> None:
    client = await join_v2(server.ws, "Edsger")
    prediction = await draw_seven(client)
    stale = await client.request(
        {"type": "submit", "id": "s-old", "seq": 3, "label": 1}, "submitted", "resync"
    )
    assert stale == {"type": "resync", "id": "s-old", "seq": 3}
    claimed = (prediction["label"] + 1) % 10
    submitted = await client.request(
        {"type": "submit", "id": "s1", "seq": 4, "label": claimed}, "submitted"
    )
    assert submitted["prediction"]["label"] == prediction["label"]
    rows = db_rows(server.data_dir, "SELECT id, strokes FROM attempts")
    assert [(id, json.loads(strokes)) for id, strokes in rows] == [
        (submitted["attempt_id"], [A, B])
    ]
    # The whole drawing, inline, as in v1 (what a client does after `resync`): the same
    # submission again, recognised as a resend.
    resent = await client.request(
        {"type": "submit", "id": "s1", "drawing": SEVEN, "label": claimed}, "submitted"
    )
    assert resent["attempt_id"] == submitted["attempt_id"]
    await client.send({"type": "clear", "seq": 5})
    empty = await client.request({"type": "submit", "id": "s2", "seq": 5, "label": 3}, "submitted")
    assert empty["code"] == "empty_drawing"
    await client.close()


async def test_v1_clients_cannot_send_increments(server: ThreadServer) -> None:
    client = await open_client(server.ws)
    await client.request({"type": "hello", "v": 1, "name": "Barbara"}, "welcome")
    refused = await client.request(
        {"id": "x", "type": "stroke_start", "seq": 1, "points": A}, "prediction"
    )
    assert (refused["code"], refused["id"]) == ("bad_message", "x")
    refused = await client.request({"type": "submit", "id": "s", "seq": 1, "label": 1}, "submitted")
    assert refused["code"] == "bad_message"
    await client.close()


async def test_each_connections_drawing_is_freed_when_it_closes(server: ThreadServer) -> None:
    before = await held_count(server)
    clients = [await join_v2(server.ws, f"Player {n}") for n in range(5)]
    for client in clients:
        await draw_seven(client)
    assert await held_count(server) == before + 5
    for client in clients:
        await client.close()

    async def freed() -> bool:
        return await held_count(server) == before

    await wait_until_async(freed, 10, "the closed connections' drawings are still held")


BAD_INCREMENTS = [
    '{"type": "points", "seq": "2", "points": [[1, 1]]}',  # seq not a number
    '{"type": "points", "seq": 1e400, "points": [[1, 1]]}',
    '{"type": "points", "seq": 9007199254740993, "points": [[1, 1]]}',  # past 2**53
    '{"type": "stroke_start", "seq": 2, "points": []}',  # a stroke needs a point
    '{"type": "points", "seq": 2, "points": [[1, 1]], "guess": 1}',  # 1 is not true
    '{"type": "points", "seq": 2, "points": [[1e999, 1]]}',  # not finite
    '{"type": "drawing", "seq": 2, "strokes": [[[1, 2, 3]]]}',
    '{"type": "clear", "seq": 2, "extra": true}',
    '{"type": "undo"}',
    '[{"type": "points"}]',
]


async def test_malformed_increments_are_refused_one_by_one_and_change_nothing(
    server: ThreadServer,
) -> None:
    client = await join_v2(server.ws, "Margaret")
    await client.send({"type": "stroke_start", "seq": 1, "points": A})
    for frame in BAD_INCREMENTS:
        refused = await client.request(frame, "prediction", "resync")
        assert refused["type"] == "error", (frame, refused)
        assert refused["code"] in ("bad_message", "bad_drawing", "bad_json"), (frame, refused)
    guess = await client.request(
        {"type": "points", "seq": 2, "points": B, "guess": True, "id": "still"}, "prediction"
    )
    assert guess["type"] == "prediction" and guess["seq"] == 2
    await client.close()
