"""`fool-the-model trainer`: the trainer as its own worker, on this machine or another one.

Servers started with `FTM_TRAINER=external` queue training jobs in the game database; this
worker polls for one, takes it (one conditional UPDATE: two workers never take the same job),
fetches the models it needs from the registry, trains in a child process (torch; a GPU when
torch sees one), writes a heartbeat with the progress every second, honours cancel requests,
registers the candidate with its files and, when the job asks for it and the gate passed, opens
the next round in the database. With `$FTM_REDIS_URL` it then publishes `round`, so every
server swaps at once; without it, the servers notice at their periodic check.

A job whose trainer stops writing heartbeats (killed, machine gone) is failed after
`FTM_TRAINER_HEARTBEAT_TIMEOUT` seconds, by the next worker or server that looks. SIGTERM (or
Ctrl-C) stops the worker cleanly: a job it runs is stopped and failed with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from server.config import DataLayout, Settings, load_rules
from server.learning.jobs.queue import JobQueue, JobRow
from server.learning.jobs.runner import JobRun, LearningSettings, worker_name
from server.logs import configure_logging
from server.serving.model_store import ModelStore
from server.storage import open_repository
from server.storage.urls import redacted

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
ANNOUNCE_TIMEOUT = 5.0  # seconds to wait for our own `round` message to come back


class Announcer:
    """Publishes `round` through the Redis broker (server/realtime/pubsub.py) when `$FTM_REDIS_URL`
    is set; without it, a no-op (the servers' periodic check finds the new round)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.broker: Any = None
        self._heard: asyncio.Event | None = None

    async def start(self) -> None:
        from server.prometheus import Metrics
        from server.realtime.pubsub import LocalBroker, open_broker

        broker = open_broker(Metrics(), self.redis_url)
        if isinstance(broker, LocalBroker):
            return
        self._heard = asyncio.Event()
        heard = self._heard
        broker.subscribe("round", lambda payload: heard.set())
        await broker.start()
        self.broker = broker

    async def round_opened(self, number: int, version: str) -> None:
        """Publish, then wait until the message comes back through Redis (so it left before a
        `--once` worker exits); a broker that is down is only logged."""
        if self.broker is None or self._heard is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.broker.subscribed.wait(), ANNOUNCE_TIMEOUT)
        self._heard.clear()
        self.broker.publish("round", {"number": number, "model_version": version})
        try:
            await asyncio.wait_for(self._heard.wait(), ANNOUNCE_TIMEOUT)
        except TimeoutError:
            log.warning("the round message was not confirmed; servers find it at their check")

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()


class Worker:
    def __init__(
        self,
        layout: DataLayout,
        settings: LearningSettings,
        *,
        redis_url: str = "",
        name: str | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.name = name or worker_name()
        self.poll_seconds = poll_seconds
        self.model_store = ModelStore(layout)
        self.job_queue = JobQueue(layout)
        self.announcer = Announcer(redis_url)
        self.current: JobRun | None = None
        self._stop = asyncio.Event()

    def stop(self, reason: str) -> None:
        """Stop polling; fail the job being run with `reason`."""
        self._stop.set()
        if self.current is not None:
            self.current.cancel(reason)

    async def run(self, once: bool = False) -> int:
        """Take jobs until stopped (`once`: one job, then return); the exit code."""
        repo = await open_repository(self.layout.database_url)  # creates / migrates the schema
        await repo.close()
        await self.announcer.start()
        log.info(
            "trainer waiting for jobs",
            extra={"worker": self.name, "database": redacted(self.layout.database_url)},
        )
        try:
            while not self._stop.is_set():
                try:
                    row = await asyncio.to_thread(self._next_job)
                except Exception as error:  # the database restarts: wait, then ask again
                    log.warning("cannot look for a job", extra={"error": str(error)})
                    row = None
                if row is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
                    continue
                log.info("trainer took a job", extra={"job": row.id, "worker": self.name})
                self.current = JobRun(
                    self.layout,
                    self.settings,
                    self.model_store,
                    self.job_queue,
                    row,
                    self._open_round,
                )
                await self.current.run()
                self.current = None
                if once:
                    break
        finally:
            await self.announcer.stop()
        return 0

    def _next_job(self) -> JobRow | None:
        self.job_queue.fail_stale_jobs(self.settings.heartbeat_timeout)
        return self.job_queue.claim_job(self.name)

    async def _open_round(self, version: str) -> int:
        repo = await open_repository(self.layout.database_url)
        try:
            opened = await repo.create_round(version, open_now=True)
        finally:
            await repo.close()
        log.info("round opened", extra={"round": opened.number, "model_version": version})
        await self.announcer.round_opened(opened.number, version)
        return opened.number


def trainer_command(args: argparse.Namespace, config: Settings) -> int:
    """CLI `fool-the-model trainer [--once] [--poll-seconds S] [--name NAME]`."""
    configure_logging()
    layout = config.layout
    try:
        settings = LearningSettings.from_config(load_rules(layout), config.trainer)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.poll_seconds is not None and not args.poll_seconds > 0:
        print("error: --poll-seconds must be positive", file=sys.stderr)
        return 2
    worker = Worker(
        layout,
        settings,
        redis_url=config.redis_url,
        name=args.name,
        poll_seconds=args.poll_seconds or POLL_SECONDS,
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            name = signal.Signals(signum).name
            loop.add_signal_handler(
                signum, worker.stop, f"the trainer worker was stopped ({name}) during the job"
            )
        return await worker.run(once=args.once)

    print(f"fool-the-model trainer {worker.name} (data: {config.data_dir})", file=sys.stderr)
    try:
        return asyncio.run(main())
    except Exception as error:  # no database, bad URL: say so plainly
        print(f"error: {error}", file=sys.stderr)
        return 1
