"""Pub/sub between the server processes of one game: in-process by default, Redis when several
processes share a database (`$FTM_REDIS_URL`).

Messages are hints, never the truth: the database is. The topics and their payloads:

    round          {"round": <round object>}: a round moved; every process reloads the current
                   round from the database, serves its model and tells its clients (any other
                   payload, e.g. the trainer worker's, announces the current round)
    scores         {}: score events were committed; fold them and push the leaderboards (and
                   the round, whose verified fools may have moved)
    attempts       {}: a submission was committed; push the round with its new counts
    claim_settled  {"player_id": 7, "message": <claim_settled message>}: for the drawer, who
                   may be connected to any process

Every process hears its own messages through the same path as everyone else's, so one process
behaves the same with either broker.

`publish` never blocks and never raises into game code: it queues the message for a sender task,
and whatever cannot be sent (Redis down, queue full) is logged, counted in /metrics and
delivered to this process's own handlers only. The Redis listener is supervised: after any error
it reconnects with backoff, and after every (re)subscribe it calls the resync callbacks, because
what was published while it was away is lost. (Redis may also drop messages for a subscriber
that falls behind; the game's periodic check covers that, see `Game._check_loop`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge

from server.config import REDIS_URL_ENV
from server.prometheus import Metrics

log = logging.getLogger(__name__)

CHANNEL = "fool-the-model"
QUEUE_SIZE = 1000  # messages waiting to be sent; more are delivered here only
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0  # seconds between reconnection attempts
TIMEOUT = 2.0  # seconds for a Redis connect or reply

Handler = Callable[[dict[str, Any]], None]


class BadBrokerUrl(ValueError):
    pass


class BrokerMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = self.registry = metrics.registry
        self.published = Counter(
            "ftm_pubsub_published", "Messages published, by topic", ["topic"], registry=r
        )
        self.publish_failures = Counter(
            "ftm_pubsub_publish_failures",
            "Messages that reached only this process (Redis error or send queue full)",
            ["reason"],
            registry=r,
        )
        self.received = Counter(
            "ftm_pubsub_received",
            "Messages delivered to this process, by topic",
            ["topic"],
            registry=r,
        )
        self.resyncs = Counter(
            "ftm_pubsub_resyncs", "Resyncs after (re)subscribing to the broker", registry=r
        )
        self.reconnects = Counter(
            "ftm_pubsub_reconnects",
            "Attempts to reconnect after the listener lost Redis",
            registry=r,
        )
        self.connected = Gauge(
            "ftm_pubsub_connected", "1 while the broker's listener is subscribed", registry=r
        )


class Broker(ABC):
    """Topics with one list of handlers each, and resync callbacks. Handlers are plain
    functions that must not block: they note what changed and let a task do the work."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = BrokerMetrics(metrics)
        self._handlers: dict[str, list[Handler]] = {}
        self._resyncs: list[Callable[[], None]] = []

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def on_resync(self, callback: Callable[[], None]) -> None:
        """`callback()` runs whenever messages may have been missed (after each subscribe)."""
        self._resyncs.append(callback)

    @abstractmethod
    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Send to every process's handlers for `topic`, this one's included; never raises."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    def deliver(self, topic: str, payload: dict[str, Any]) -> None:
        """Run this process's handlers for one message (a broken handler is only logged)."""
        self.metrics.received.labels(topic).inc()
        for handler in self._handlers.get(topic, ()):
            try:
                handler(payload)
            except Exception:
                log.exception("pubsub handler failed", extra={"topic": topic})

    def resync(self) -> None:
        self.metrics.resyncs.inc()
        for callback in self._resyncs:
            try:
                callback()
            except Exception:
                log.exception("resync callback failed")


class LocalBroker(Broker):
    """One process: a message reaches this process's handlers on the next loop iteration."""

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.metrics.published.labels(topic).inc()
        asyncio.get_running_loop().call_soon(self.deliver, topic, payload)

    async def start(self) -> None:
        self.metrics.connected.set(1)

    async def stop(self) -> None:
        self.metrics.connected.set(0)


class RedisBroker(Broker):
    def __init__(self, url: str, metrics: Metrics) -> None:
        super().__init__(metrics)
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.channel = channel_for(url)

        def client(retries: int) -> redis.Redis:
            try:
                return redis.Redis.from_url(
                    url,
                    socket_connect_timeout=TIMEOUT,
                    socket_timeout=TIMEOUT,
                    health_check_interval=10,
                    retry=Retry(NoBackoff(), retries),
                )
            except ValueError as error:
                raise BadBrokerUrl(f"Bad ${REDIS_URL_ENV} {url!r}: {error}") from None

        # The sender may retry once (a pooled connection goes stale when Redis restarts); the
        # listener never retries inside redis-py, so that every reconnection passes through
        # `_listen` and ends in a resync.
        self._sender_client = client(1)
        self._listener_client = client(0)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()  # set while the listener is subscribed

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._listen())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.metrics.connected.set(0)
        await self._sender_client.aclose()
        await self._listener_client.aclose()

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self._local_only(topic, payload, "queue_full")

    def _local_only(self, topic: str, payload: dict[str, Any], reason: str) -> None:
        """Other processes miss this one (they catch up at their next resync or check)."""
        self.metrics.publish_failures.labels(reason).inc()
        self.deliver(topic, payload)

    async def _send_loop(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            data = json.dumps({"topic": topic, "payload": payload}, separators=(",", ":"))
            try:
                await self._sender_client.publish(self.channel, data)
            except Exception as error:
                log.warning("publish failed", extra={"topic": topic, "error": str(error)})
                self._local_only(topic, payload, "error")
            else:
                self.metrics.published.labels(topic).inc()

    async def _listen(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                async with self._listener_client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    self.metrics.connected.set(1)
                    log.info("pubsub subscribed", extra={"channel": self.channel})
                    delay = BACKOFF_FIRST
                    self.resync()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None and message["type"] == "message":
                            self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "pubsub listener lost Redis; reconnecting",
                    extra={"error": str(error) or type(error).__name__, "retry_in": delay},
                )
            self.subscribed.clear()
            self.metrics.connected.set(0)
            self.metrics.reconnects.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _received(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            topic, payload = message["topic"], message["payload"]
            if not isinstance(topic, str) or not isinstance(payload, dict):
                raise TypeError("topic must be a string and payload an object")
        except (ValueError, TypeError, KeyError) as error:
            log.warning("ignored a malformed pubsub message", extra={"error": str(error)})
            return
        self.deliver(topic, payload)


def channel_for(url: str) -> str:
    """Redis pub/sub ignores the database number, so it names the channel: games sharing one
    Redis server use different numbers (redis://host:6379/1, /2, …) and never hear each other."""
    path = urlsplit(url).path.strip("/")
    return f"{CHANNEL}:{path or '0'}"


def open_broker(metrics: Metrics, url: str) -> Broker:
    """`url` (`$FTM_REDIS_URL`, server/config.py): empty for in-process, else
    `redis://host:port/db`."""
    url = url.strip()
    if not url:
        return LocalBroker(metrics)
    if not url.startswith(("redis://", "rediss://")):
        raise BadBrokerUrl(
            f"Bad ${REDIS_URL_ENV} {url!r}: use redis://host:6379/0 (or leave it empty to "
            "run one process without Redis)."
        )
    return RedisBroker(url, metrics)
