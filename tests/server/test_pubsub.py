"""The brokers: in-process, and Redis against a real server (restarted to pull the rug)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from services import RedisServer
from waiting import wait_until_async

from server.prometheus import Metrics
from server.realtime.pubsub import (
    BadBrokerUrl,
    Broker,
    LocalBroker,
    RedisBroker,
    channel_for,
    open_broker,
)


class Heard:
    """What one broker's handlers received, and how often it resynced."""

    def __init__(self, broker: Broker, topic: str = "scores") -> None:
        self.messages: list[dict[str, Any]] = []
        self.resyncs = 0
        broker.subscribe(topic, self.messages.append)
        broker.on_resync(self._resynced)

    def _resynced(self) -> None:
        self.resyncs += 1


async def until(condition: Callable[[], object], what: str) -> None:
    await wait_until_async(condition, 10, f"never: {what}")


def counted(broker: Broker, name: str, labels: dict[str, str] | None = None) -> float:
    value = broker.metrics.registry.get_sample_value(name, labels or {})
    return value or 0.0


@pytest.fixture
async def brokers(redis_server: RedisServer) -> AsyncIterator[list[RedisBroker]]:
    """Two processes' brokers on one Redis, both subscribed."""
    started = [RedisBroker(redis_server.url, Metrics()) for _ in range(2)]
    for broker in started:
        await broker.start()
    for broker in started:
        await asyncio.wait_for(broker.subscribed.wait(), 10)
    yield started
    for broker in started:
        await broker.stop()


async def test_the_local_broker_delivers_after_publish_returns() -> None:
    broker = LocalBroker(Metrics())
    heard = Heard(broker)
    broker.publish("scores", {"n": 1})
    assert heard.messages == []  # never inside the caller's code
    await until(lambda: heard.messages == [{"n": 1}], "delivered")


async def test_a_broken_handler_does_not_stop_the_others() -> None:
    broker = LocalBroker(Metrics())

    def broken(payload: dict[str, Any]) -> None:
        raise RuntimeError("a bug in one handler")

    broker.subscribe("scores", broken)
    heard = Heard(broker)
    broker.publish("scores", {"n": 1})
    await until(lambda: heard.messages == [{"n": 1}], "delivered past the broken handler")


async def test_every_process_hears_every_message_its_own_included(
    brokers: list[RedisBroker],
) -> None:
    a, b = brokers
    heard_a, heard_b = Heard(a), Heard(b)
    a.publish("scores", {"from": "a"})
    b.publish("scores", {"from": "b"})
    await until(lambda: len(heard_a.messages) == len(heard_b.messages) == 2, "both heard both")
    assert sorted(m["from"] for m in heard_a.messages) == ["a", "b"]
    assert sorted(m["from"] for m in heard_b.messages) == ["a", "b"]
    assert counted(a, "ftm_pubsub_published_total", {"topic": "scores"}) == 1


async def test_malformed_messages_on_the_channel_are_ignored(
    brokers: list[RedisBroker], redis_server: RedisServer
) -> None:
    a, _ = brokers
    heard = Heard(a)
    async with redis.Redis.from_url(redis_server.url) as raw:
        for junk in (b"not json", b"[1, 2]", b'{"topic": 5, "payload": {}}', b'{"topic": "x"}'):
            await raw.publish(a.channel, junk)
        await raw.publish(a.channel, b'{"topic": "scores", "payload": {"ok": true}}')
    await until(lambda: heard.messages == [{"ok": True}], "the good message after the junk")


async def test_games_on_different_redis_databases_do_not_hear_each_other(
    redis_server: RedisServer, brokers: list[RedisBroker]
) -> None:
    other_url = redis_server.url.rsplit("/", 1)[0] + "/1"
    assert channel_for(other_url) != channel_for(redis_server.url)
    other = RedisBroker(other_url, Metrics())
    heard_other = Heard(other)
    await other.start()
    try:
        await asyncio.wait_for(other.subscribed.wait(), 10)
        heard = Heard(brokers[0])
        brokers[1].publish("scores", {"game": 0})
        other.publish("scores", {"game": 1})
        await until(lambda: heard.messages and heard_other.messages, "each game heard itself")
        # Redis hands a subscriber its messages in the order it took them: once a message sent
        # after the other game's is heard here, the other game's would have been heard before.
        brokers[1].publish("scores", {"game": 0, "after": "the other game's message"})
        await until(lambda: len(heard.messages) == 2, "the later message")
        assert heard.messages == [{"game": 0}, {"game": 0, "after": "the other game's message"}]
        assert heard_other.messages == [{"game": 1}]
    finally:
        await other.stop()


async def test_a_redis_restart_ends_in_a_resync_and_publishing_never_raises(
    brokers: list[RedisBroker], redis_server: RedisServer
) -> None:
    a, b = brokers
    heard_a, heard_b = Heard(a), Heard(b)
    redis_server.stop()
    await until(lambda: not a.subscribed.is_set(), "the listener noticed")
    # While Redis is down: no exception, counted, and at least this process hears itself.
    a.publish("scores", {"during": "outage"})
    await until(lambda: heard_a.messages == [{"during": "outage"}], "delivered here")
    assert heard_b.messages == []  # lost for the others: the resync is how they catch up
    assert counted(a, "ftm_pubsub_publish_failures_total", {"reason": "error"}) == 1

    redis_server.start()
    await until(lambda: heard_a.resyncs == heard_b.resyncs == 1, "both resynced")
    a.publish("scores", {"after": "restart"})
    await until(lambda: {"after": "restart"} in heard_b.messages, "messages flow again")
    assert a.subscribed.is_set() and b.subscribed.is_set()
    assert counted(a, "ftm_pubsub_reconnects_total") >= 1


async def test_the_first_subscribe_resyncs_too(redis_server: RedisServer) -> None:
    broker = RedisBroker(redis_server.url, Metrics())
    heard = Heard(broker)
    await broker.start()
    try:
        await until(lambda: heard.resyncs == 1, "resync after the first subscribe")
    finally:
        await broker.stop()


async def test_a_broker_starts_while_redis_is_down_and_connects_later(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.stop()
    broker = RedisBroker(redis_server.url, Metrics())
    heard = Heard(broker)
    caplog.set_level(logging.WARNING, logger="server.realtime.pubsub")
    await broker.start()
    try:
        await until(lambda: len(failed_connections(caplog)) >= 2, "two failed connections")
        assert heard.resyncs == 0
        assert not broker.subscribed.is_set()
        redis_server.start()
        await until(lambda: heard.resyncs == 1, "subscribed once Redis is back")
    finally:
        await broker.stop()


def failed_connections(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("pubsub listener lost Redis")]


def test_the_url_chooses_the_broker() -> None:
    assert isinstance(open_broker(Metrics(), ""), LocalBroker)
    assert isinstance(open_broker(Metrics(), "redis://127.0.0.1:1/0"), RedisBroker)
    with pytest.raises(BadBrokerUrl, match="redis://host:6379/0"):
        open_broker(Metrics(), "http://127.0.0.1:6379")
