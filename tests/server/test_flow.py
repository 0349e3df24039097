"""The whole game flow against a real server: join, live guesses, submit, resume."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from live_server import ONE, SEVEN, ThreadServer, db_rows, join, open_client, row_counts
from PIL import Image


def png_of_bar() -> str:
    image = Image.new("L", (280, 280), 255)
    image.paste(0, (130, 40, 150, 240))  # a black vertical bar on white: a 1
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def test_hello_predict_submit(server: ThreadServer) -> None:
    client, welcome = await join(server.ws, "Ada")
    assert welcome["player"]["name"] == "Ada"
    assert welcome["token"]
    assert welcome["model_version"] == "v1"
    assert welcome["round"]["number"] == 1
    assert welcome["round"]["state"] == "open"
    assert welcome["round"]["model_version"] == "v1"

    prediction = await client.request(
        {"type": "predict", "id": "p1", "drawing": SEVEN}, "prediction"
    )
    assert prediction["id"] == "p1"
    assert len(prediction["probs"]) == 10
    assert abs(sum(prediction["probs"]) - 1) < 1e-3
    assert prediction["label"] == int(np.argmax(prediction["probs"]))
    assert prediction["model_version"] == "v1"

    claimed = (prediction["label"] + 1) % 10  # a claim the model disagrees with
    submitted = await client.request(
        {"type": "submit", "id": "s1", "drawing": SEVEN, "label": claimed}, "submitted"
    )
    assert submitted["id"] == "s1"
    assert submitted["label"] == claimed
    assert submitted["prediction"]["label"] == prediction["label"]  # re-predicted, same drawing
    assert submitted["outcome"] == "pending"
    assert submitted["model_version"] == "v1"

    agreed = await client.request(
        {"type": "submit", "id": "s2", "drawing": SEVEN, "label": prediction["label"]}, "submitted"
    )
    assert agreed["outcome"] == "model_won"
    await client.close()

    rows = db_rows(
        server.data_dir,
        "SELECT id, player_id, round_id, label, predicted, model_version, outcome, strokes,"
        " length(image), probs FROM attempts ORDER BY id",
    )
    claims = db_rows(server.data_dir, "SELECT attempt_id, state FROM claims")
    assert [r[0] for r in rows] == [submitted["attempt_id"], agreed["attempt_id"]]
    first = rows[0]
    assert first[1] == welcome["player"]["id"]
    assert first[2] == welcome["round"]["id"]
    assert (first[3], first[4], first[5], first[6]) == (
        claimed,
        prediction["label"],
        "v1",
        "pending",
    )
    assert json.loads(first[7]) == SEVEN["strokes"]
    assert first[8] == 28 * 28 * 4
    assert json.loads(first[9]) == submitted["prediction"]["probs"]
    assert claims == [(submitted["attempt_id"], "pending")]  # only the mismatch is a claim


async def test_png_submission_is_stored(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Grace")
    png = png_of_bar()
    submitted = await client.request(
        {"type": "submit", "id": "s", "drawing": {"png": png}, "label": 1}, "submitted"
    )
    assert submitted["type"] == "submitted"
    [(stored, strokes)] = db_rows(server.data_dir, "SELECT png, strokes FROM attempts")
    assert stored == base64.b64decode(png)
    assert strokes is None


async def test_reconnecting_with_the_token_resumes_the_player(server: ThreadServer) -> None:
    first, welcome = await join(server.ws, "Linus")
    await first.close()

    again = await open_client(server.ws)
    resumed = await again.request({"type": "hello", "v": 1, "token": welcome["token"]}, "welcome")
    assert resumed["player"] == welcome["player"]
    assert "token" not in resumed  # only shown when the player is created
    assert (await again.request({"type": "submit", "drawing": ONE, "label": 1}, "submitted"))[
        "type"
    ] == "submitted"
    await again.close()
    assert row_counts(server.data_dir)["players"] == 1


async def test_names_are_unique_ignoring_case(server: ThreadServer) -> None:
    _, welcome = await join(server.ws, "  Alan  ")
    assert welcome["player"]["name"] == "Alan"  # trimmed
    other = await open_client(server.ws)
    taken = await other.request({"type": "hello", "v": 1, "id": "h", "name": "ALAN"}, "welcome")
    assert (taken["code"], taken["id"]) == ("name_taken", "h")
    # The connection survives a refused hello, and can join with another name.
    joined = await other.request({"type": "hello", "v": 1, "name": "Alan T."}, "welcome")
    assert joined["player"]["name"] == "Alan T."
    assert row_counts(server.data_dir)["players"] == 2


async def test_invalid_names_and_unknown_tokens_are_refused(server: ThreadServer) -> None:
    client = await open_client(server.ws)
    for name in ["A", "x" * 25, "   ", "<script>", "a\nb", "émoji 🙂"]:
        refused = await client.request({"type": "hello", "v": 1, "name": name}, "welcome")
        assert refused["code"] == "name_invalid", name
    refused = await client.request({"type": "hello", "v": 1, "token": "nope"}, "welcome")
    assert refused["code"] == "unknown_token"
    still_there = await client.request({"type": "ping", "id": "h"}, "pong")
    assert still_there["code"] == "hello_first"  # refused, but the connection is still open
    assert row_counts(server.data_dir)["players"] == 0


async def test_spectators_watch_but_cannot_play(server: ThreadServer) -> None:
    client = await open_client(server.ws)
    welcome = await client.request({"type": "hello", "v": 1, "spectator": True}, "welcome")
    assert welcome["player"] is None
    assert welcome["round"]["state"] == "open"
    for message in (
        {"type": "predict", "id": "p", "drawing": ONE},
        {"type": "submit", "id": "s", "drawing": ONE, "label": 1},
    ):
        refused = await client.request(message, "prediction", "submitted")
        assert refused["code"] == "spectator"
    assert row_counts(server.data_dir)["attempts"] == 0


async def test_live_guesses_are_latest_wins(server: ThreadServer) -> None:
    client, _ = await join(server.ws, "Barbara")
    ids = [f"p{i}" for i in range(15)]
    for i, id_ in enumerate(ids):
        # Each drawing differs a little, as it would while someone draws.
        drawing = {"strokes": [[[10, 10], [60 + i, 10], [40, 90]]]}
        await client.send({"type": "predict", "id": id_, "drawing": drawing})
    answered: list[str] = []
    while not answered or answered[-1] != ids[-1]:
        answered.append((await client.reply("prediction"))["id"])
    # The newest guess is always answered; older ones are answered in order or dropped.
    assert answered == sorted(answered, key=ids.index)
    assert len(answered) <= len(ids)
    await client.close()
