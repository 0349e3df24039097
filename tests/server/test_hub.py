"""Pushes to every connection go out in turns: the event loop serves other work (live guesses)
between them instead of stopping for the whole push, and a push made stale stops."""

from __future__ import annotations

import asyncio
from typing import cast

from server.prometheus import Metrics
from server.realtime.hub import PUSH_TURN, Connection, Hub


class Recorder:
    """A connection that notes what it was sent, and when, among other work on the loop."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def send_text(self, text: str) -> None:
        self.log.append("sent")


def hub_of(count: int, log: list[str]) -> Hub:
    hub = Hub(Metrics())
    for _ in range(count):
        hub.add(cast(Connection, Recorder(log)))
    return hub


async def test_a_push_lets_other_work_run_between_its_turns() -> None:
    log: list[str] = []
    hub = hub_of(3 * PUSH_TURN, log)
    asyncio.get_running_loop().call_soon(log.append, "a live guess")
    await hub.push({"type": "round"}, current=lambda: True)
    assert log.count("sent") == 3 * PUSH_TURN
    # The guess was served after the first turn, not after the whole push.
    assert log.index("a live guess") == PUSH_TURN


async def test_a_stale_push_stops() -> None:
    log: list[str] = []
    hub = hub_of(3 * PUSH_TURN, log)
    turns = 0

    def current() -> bool:
        nonlocal turns
        turns += 1
        return turns < 2  # a newer message went out after the first turn

    await hub.push({"type": "round"}, current=current)
    assert log.count("sent") == PUSH_TURN
