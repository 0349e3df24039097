"""Property-based fuzzing of a live server (issue 12): arbitrary JSON frames, arbitrary drawings
(any floats JSON allows, NaN and huge ones included; PNG bytes, valid or not) and text that is
not JSON. Every frame gets a valid reply or an error with a documented code, never `internal`;
the connection survives (or is closed with a documented code); and a canary player on another
connection, guessing meanwhile, sees no error at all.

Bounded: a fixed number of examples of at most a dozen frames each, to 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_server import SEVEN, Client, ThreadServer, join
from PIL import Image
from websockets.exceptions import ConnectionClosed

from server.realtime.protocol import MESSAGE_TYPES

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def documented(section: str) -> set[str]:
    """The codes in the first column of a table of docs/protocol.md, below `section`."""
    text = PROTOCOL_DOC.read_text().split(section, 1)[1]
    table = text.split("\n\n", 1)[0] if "|" in text.split("\n", 3)[2] else text
    return {code for row in re.findall(r"^\| (.+?) \|", table, re.M) for code in
            re.findall(r"`?(\w+)`?", row)}  # fmt: skip


ERROR_CODES = documented("| code | when |") - {"internal", "code"}
CLOSE_CODES = {int(code) for code in documented("## Close codes") if code.isdigit()}
NAMES = (f"Fuzz {n}" for n in itertools.count())

# --- frames --------------------------------------------------------------------------------

any_float = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [5e-324, -5e-324, 0.0, -0.0, 1e308, -1e308, 1e-300, 100_000.0, 100_000.0000001]
)
number = any_float | st.integers(-(10**30), 10**30)
# Mostly well-formed points whose coordinates are edge cases: that is where renderers break.
coordinate = st.sampled_from([0.0, 5e-324, 1e-310, 1e-7, 1.0, 99_999.5, -100_000.0]) | number
point = st.lists(coordinate, min_size=2, max_size=2) | st.lists(number, max_size=3)
strokes = st.lists(st.lists(point, max_size=8), max_size=6)
# A drawing at any scale: the same shapes from the size of a denormal to the largest allowed.
scaled_strokes = st.builds(
    lambda shape, scale: [[[x * scale, y * scale] for x, y in stroke] for stroke in shape],
    st.lists(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=4),
             min_size=1, max_size=3),
    st.sampled_from([5e-324, 1e-320, 1e-310, 1e-300, 1e-7, 1.0, 25_000.0]),
)  # fmt: skip


def png_of(width: int, height: int, mode: str, seed: int) -> str:
    image = Image.effect_noise((width, height), 64 + seed % 128).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


pngs = st.one_of(
    st.builds(
        png_of,
        st.integers(1, 64),
        st.integers(1, 64),
        st.sampled_from(["L", "RGB", "RGBA", "1", "I;16"]),
        st.integers(0, 1000),
    ),
    st.binary(max_size=200).map(lambda data: base64.b64encode(data).decode()),
    st.text(max_size=50),
)
drawing = st.one_of(
    st.fixed_dictionaries({"strokes": strokes}),
    st.fixed_dictionaries({"strokes": scaled_strokes}),
    st.fixed_dictionaries({"png": pngs}),
    st.dictionaries(st.sampled_from(["strokes", "png", "x"]), strokes | pngs, max_size=3),
)
json_value = st.recursive(
    st.none() | st.booleans() | number | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
message = st.fixed_dictionaries(
    {"type": st.sampled_from([*MESSAGE_TYPES, "teleport"]) | st.text(max_size=8)},
    optional={
        "drawing": drawing | json_value,
        "label": st.integers(-2, 12) | json_value,
        "v": st.sampled_from([1, 2]) | json_value,
        "name": st.text(max_size=30),
        "task_id": st.text(max_size=20) | json_value,
        "answer": st.integers(-1, 11) | st.just("x") | json_value,
        "board": st.sampled_from(["round", "all", "validators", "x"]),
        "spectator": st.booleans() | json_value,
        "extra": json_value,
    },
)
live_guess = st.fixed_dictionaries({"type": st.just("predict"), "drawing": drawing})
submission = st.fixed_dictionaries(
    {"type": st.just("submit"), "drawing": drawing, "label": st.integers(0, 9)}
)
frame = st.one_of(
    live_guess,
    submission,
    message,
    json_value,
    st.text(max_size=100),  # mostly not JSON
    st.integers(1, 40).map(lambda depth: "[" * depth + "]" * depth),
)

# --- the check -------------------------------------------------------------------------------


def encode(value: Any, number: int) -> tuple[str, str | None]:
    """The frame's text and the id it carries (each dict gets one, to match the replies)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict):
        value = {**value, "id": f"f{number}"}
    return json.dumps(value), value.get("id") if isinstance(value, dict) else None


async def until_pong(client: Client, ping: str, seen: list[dict[str, Any]]) -> None:
    await client.send({"type": "ping", "id": ping})
    while (message := await client.recv()) != {"type": "pong", "id": ping}:
        seen.append(message)


async def drain(client: Client, expected: set[str], seen: list[dict[str, Any]]) -> None:
    """Wait for the replies still on their way: a last live guess is answered after every
    earlier one (a connection's guesses are served in turn), and then every request but the
    superseded guesses has its one reply."""
    await client.send({"type": "predict", "id": "drain", "drawing": SEVEN})
    while (message := await client.recv()).get("id") != "drain":
        seen.append(message)
    assert message["type"] == "prediction"
    while expected - {m.get("id") for m in seen}:
        seen.append(await client.recv())


async def fuzz(url: str, frames: list[Any]) -> None:
    player, _ = await join(url, next(NAMES))
    canary, _ = await join(url, next(NAMES))
    done = asyncio.Event()

    async def watch() -> list[dict[str, Any]]:
        answers = []
        for n in range(200):
            if done.is_set():
                break
            guess = {"type": "predict", "id": f"c{n}", "drawing": SEVEN}
            answers.append(await canary.request(guess, "prediction"))
            await asyncio.sleep(0.02)
        return answers

    watching = asyncio.create_task(watch())
    seen: list[dict[str, Any]] = []
    sent: dict[str, Any] = {}
    try:
        for number, value in enumerate(frames):
            text, id = encode(value, number)
            if id:
                sent[id] = value
            await player.send(text)
            await until_pong(player, f"sync{number}", seen)
        guesses = {id for id, value in sent.items() if value.get("type") == "predict"}
        await drain(player, set(sent) - guesses, seen)
    except ConnectionClosed:
        code = player.connection.close_code
        assert code in CLOSE_CODES, (code, player.connection.close_reason)
    finally:
        done.set()
    answers = await watching
    errors = [m for m in seen if m["type"] == "error"]
    assert [e for e in errors if e["code"] not in ERROR_CODES] == []
    assert [e for e in errors if e["id"] is not None and e["id"] not in sent] == []
    replied = [m["id"] for m in seen if m.get("id") in sent]
    assert len(replied) == len(set(replied))  # one reply per request
    assert answers and [a for a in answers if a["type"] != "prediction"] == []
    await player.close()
    await canary.close()


# Every example joins a new player from 127.0.0.1: lift the per-address account limit (the
# limit itself is pinned in tests/server/test_trust.py).
MANY_ACCOUNTS = """
[accounts]
per_address_burst = 100000
per_address_per_hour = 100000.0
overall_burst = 100000
overall_per_minute = 100000.0
"""


@pytest.fixture
def data_dir(data_dir: Path) -> Path:
    (data_dir / "rules.toml").write_text(MANY_ACCOUNTS)
    return data_dir


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(frame, min_size=1, max_size=12))
def test_no_frame_hurts_the_connection_or_another_player(
    server: ThreadServer, frames: list[Any]
) -> None:
    asyncio.run(fuzz(server.ws, frames))


def test_the_documented_codes_are_read() -> None:
    assert {"bad_json", "bad_message", "rate_limited", "bad_drawing"} <= ERROR_CODES
    assert {1008, 1009, 1013} <= CLOSE_CODES


pytestmark = pytest.mark.slow
