"""`explain` over a real websocket: the 28×28 the model saw and where it looked, refused cleanly
when malformed, and rate-limited per player (across their connections) without touching anyone
else's requests."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from live_server import SEVEN, ThreadServer, join, open_client, row_counts, spectate

from server.realtime.limits import Limits


def plane(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(28, 28)


async def test_an_explanation_shows_the_input_and_where_the_model_looked(
    server: ThreadServer,
) -> None:
    client, _ = await join(server.ws, "Ada")
    guess = await client.request({"type": "predict", "id": "p1", "drawing": SEVEN}, "prediction")
    seen = await client.request({"type": "explain", "id": "e1", "drawing": SEVEN}, "explanation")
    assert seen["id"] == "e1"
    assert seen["label"] == guess["label"]
    assert seen["probs"] == guess["probs"]
    assert seen["model_version"] == "v1"
    image, heat = plane(seen["input"]), plane(seen["heatmap"])
    assert image.max() > 200 and image[0].max() == 0  # white ink on black, centred
    assert heat.max() == 255  # scaled so the hottest spot is full
    assert not heat[image == 0].all()  # not uniformly hot


async def test_bad_explain_requests_are_refused_and_change_nothing(
    server: ThreadServer, data_dir: Path
) -> None:
    stranger = await open_client(server.ws)
    early = await stranger.request({"type": "explain", "id": "e0", "drawing": SEVEN}, "x")
    assert (early["code"], early["id"]) == ("hello_first", "e0")

    client, _ = await join(server.ws, "Ada")
    before = row_counts(data_dir)
    cases = [
        ({"type": "explain", "id": "e1"}, "bad_message"),
        ({"type": "explain", "id": "e2", "drawing": {"strokes": "no"}}, "bad_message"),
        ({"type": "explain", "id": "e3", "drawing": {"strokes": []}}, "empty_drawing"),
        ({"type": "explain", "id": "e4", "drawing": {"png": "bm90IGEgcG5n"}}, "bad_drawing"),
        ({"type": "explain", "id": "e5", "drawing": SEVEN, "label": 3}, "bad_message"),
    ]
    for message, code in cases:
        refused = await client.request(message, "explanation")
        assert (refused["type"], refused["code"], refused["id"]) == ("error", code, message["id"])
    assert await client.alive()
    watcher = await spectate(server.ws)
    refused = await watcher.request({"type": "explain", "id": "e6", "drawing": SEVEN}, "x")
    assert refused["code"] == "spectator"
    assert row_counts(data_dir) == before


async def test_explanations_are_limited_per_player_not_per_connection(data_dir: Path) -> None:
    limits = Limits(explain_burst=1, explain_per_second=0.01)
    with ThreadServer(data_dir, limits) as server:
        ada, welcome = await join(server.ws, "Ada")
        first = await ada.request({"type": "explain", "id": "a1", "drawing": SEVEN}, "explanation")
        assert first["type"] == "explanation"

        second_tab = await open_client(server.ws)
        hello = {"type": "hello", "v": 1, "token": welcome["token"]}
        await second_tab.request(hello, "welcome")
        refused = await second_tab.request(
            {"type": "explain", "id": "a2", "drawing": SEVEN}, "explanation"
        )
        assert (refused["code"], refused["id"]) == ("rate_limited", "a2")

        # Another player's explanation and Ada's own guesses are not affected.
        grace, _ = await join(server.ws, "Grace")
        theirs = await grace.request(
            {"type": "explain", "id": "g1", "drawing": SEVEN}, "explanation"
        )
        assert theirs["type"] == "explanation"
        guess = await ada.request({"type": "predict", "id": "p", "drawing": SEVEN}, "prediction")
        assert guess["type"] == "prediction"
