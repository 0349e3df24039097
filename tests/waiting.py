"""Waiting on a condition with a deadline: the one way the tests wait for something to happen.

A test polls the condition it cares about instead of sleeping a guessed time: it goes on as soon
as the condition holds, and on a slow machine it waits longer instead of failing (or, worse,
passing because the thing to check had not happened yet). A test that something did NOT happen
first waits for a positive marker that comes after the moment it would have happened, then
asserts it did not; only where no such marker can be seen does it watch for a while
(`assert_stays`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")

POLL_SECONDS = 0.02


def wait_until(
    condition: Callable[[], T], timeout: float, message: str, poll: float = POLL_SECONDS
) -> T:
    """The first truthy value of `condition()`, polled every `poll` seconds; AssertionError with
    `message` (and the last value seen) if none comes within `timeout` seconds. `condition` may
    raise to give up early (say, when the process it waits on has died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:g} s: {message} (last seen: {value!r})")
        time.sleep(poll)


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float,
    message: str,
    poll: float = POLL_SECONDS,
) -> T:
    """`wait_until` for the event loop: `condition` may be a plain function or a coroutine
    function, and the loop runs other tasks while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return cast(T, value)
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:g} s: {message} (last seen: {value!r})")
        await asyncio.sleep(poll)


def assert_stays(
    condition: Callable[[], object], seconds: float, message: str, poll: float = POLL_SECONDS
) -> None:
    """Fail with `message` the moment `condition()` turns false within `seconds`.

    The last resort for "nothing happened" when the code under test shows no marker that it
    has looked (another process's periodic check, say): unlike a sleep followed by one
    assertion, it fails as soon as the unwanted thing happens, but like it, it cannot see
    what would happen after the window. Prefer `wait_until` on a marker."""
    deadline = time.monotonic() + seconds
    while True:
        assert condition(), message
        if time.monotonic() > deadline:
            return
        time.sleep(poll)
