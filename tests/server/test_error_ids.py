"""Every `error` reply echoes the id of the request it refuses (issue 18): a client waiting on that
id must hear back, whatever went wrong, rate limits included; a rate limit says how long to wait
(a real wait, rounded up, never "0.0 s")."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from live_server import SEVEN, Client, ThreadServer, join, open_client

from server.realtime.limits import Limits

ID = "the-id"
SLOW = 0.05  # tokens per second once a burst is spent: a wait of up to 20 s
HELLO = {"type": "hello", "v": 1, "name": "Ada"}
Step = Callable[[str], Awaitable[dict[str, Any]]]  # the server's URL → the error reply to ID


async def joined(url: str) -> Client:
    client, _ = await join(url, "Ada")
    return client


@dataclass(frozen=True)
class Case:
    code: str
    step: Step
    limits: Limits = field(default_factory=Limits)
    rules: str = ""


async def fresh(url: str, message: dict[str, Any] | str) -> dict[str, Any]:
    """`message` on a new connection, before any hello: its reply."""
    return await (await open_client(url)).request(message, "never")


async def after_hello(url: str, message: dict[str, Any] | str) -> dict[str, Any]:
    return await (await joined(url)).request(message, "never")


async def spectating(url: str) -> Client:
    client = await open_client(url)
    welcome = await client.request({"type": "hello", "v": 1, "spectator": True}, "welcome")
    assert welcome["type"] == "welcome", welcome
    return client


async def spectator_plays(url: str) -> dict[str, Any]:
    return await (await spectating(url)).request({"type": "task", "id": ID}, "never")


async def too_many_spectators(url: str) -> dict[str, Any]:
    """Spectator hellos from this address until one is refused: 30 at once, then 2 a second
    (shared_limits.PER_ADDRESS_SPECTATORS), so a slow run may earn a token back meanwhile."""
    for _ in range(60):
        client = await open_client(url)
        hello = {"type": "hello", "id": ID, "v": 1, "spectator": True}
        if (reply := await client.request(hello, "welcome"))["type"] != "welcome":
            return reply
    raise AssertionError("60 spectators in a row were let in")


async def too_many_accounts(url: str) -> dict[str, Any]:
    await join(url, "Grace")  # the one account this address may make (ACCOUNTS)
    return await fresh(url, {**HELLO, "id": ID})


def spending(message: dict[str, Any] | Callable[[str], str], times: int = 1) -> Step:
    """After hello, `message` `times` (using up a limit), then once more with our id: the reply
    to that one. `message` is a dict, or a function making the raw frame for an id."""

    def frame(id: str) -> dict[str, Any] | str:
        return message(id) if callable(message) else {**message, "id": id}

    async def step(url: str) -> dict[str, Any]:
        client = await joined(url)
        for n in range(times):
            await client.send(frame(f"spend{n}"))
        await client.send(frame(ID))
        while (reply := await client.recv())["id"] != ID:
            pass
        return reply

    return step


def id_first_predict(id: str) -> str:
    """A live guess the fast path does not recognise (`id` before `type`): parsed in full."""
    return json.dumps({"id": id, "type": "predict", "drawing": SEVEN})


ACCOUNTS = "[accounts]\nper_address_burst = 1\n"
PREDICTS = Limits(predict_burst=1, predict_per_second=SLOW)
TASKS = Limits(tasks_burst=1, tasks_per_second=SLOW)

CASES: dict[str, Case] = {
    "unknown type": Case("unknown_type", lambda url: fresh(url, {"type": "nope", "id": ID})),
    "bad message": Case("bad_message", lambda url: fresh(url, {"type": "submit", "id": ID})),
    "two types": Case(
        "bad_message", lambda url: fresh(url, f'{{"type": "ping", "id": "{ID}", "type": "x"}}')
    ),
    "hello first": Case("hello_first", lambda url: fresh(url, {"type": "task", "id": ID})),
    "old protocol": Case(
        "unsupported_version", lambda url: fresh(url, {**HELLO, "id": ID, "v": 99})
    ),
    "hello twice": Case("already_joined", lambda url: after_hello(url, {**HELLO, "id": ID})),
    "spectator plays": Case("spectator", spectator_plays),
    "bad live drawing": Case(
        "bad_drawing",
        lambda url: after_hello(url, {"type": "predict", "id": ID, "drawing": {"png": "AAAA"}}),
    ),
    "unknown task": Case(
        "unknown_task",
        lambda url: after_hello(url, {"type": "vote", "id": ID, "task_id": "no", "answer": 1}),
    ),
    "messages": Case(
        "rate_limited",
        spending({"type": "ping"}, times=2),  # hello took the first of three
        Limits(messages_burst=3, messages_per_second=SLOW),
    ),
    "live guesses": Case("rate_limited", spending({"type": "predict", "drawing": SEVEN}), PREDICTS),
    "parsed live guesses": Case("rate_limited", spending(id_first_predict), PREDICTS),
    "submissions": Case(
        "rate_limited",
        spending({"type": "submit", "drawing": SEVEN, "label": 3}),
        Limits(submit_burst=1, submit_per_second=SLOW),
    ),
    "tasks": Case("rate_limited", spending({"type": "task"}), TASKS),
    "votes": Case("rate_limited", spending({"type": "vote", "task_id": "no", "answer": 1}), TASKS),
    "accounts": Case("rate_limited", too_many_accounts, rules=ACCOUNTS),
    "spectators": Case("rate_limited", too_many_spectators),
}


@pytest.mark.parametrize("name", CASES)
async def test_every_error_echoes_the_request_id(data_dir: Path, name: str) -> None:
    case = CASES[name]
    if case.rules:
        (data_dir / "rules.toml").write_text(case.rules)
    with ThreadServer(data_dir, case.limits) as server:
        refused = await case.step(server.ws)
    assert (refused["type"], refused["code"], refused["id"]) == ("error", case.code, ID)
    assert refused["message"]
    if case.code == "rate_limited":
        wait = re.fullmatch(r"Too many .+; try again in (\d+\.\d) s\.", refused["message"])
        assert wait is not None, refused["message"]
        assert float(wait[1]) >= 0.1
