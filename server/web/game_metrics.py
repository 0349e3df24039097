"""The game's state in /metrics: what an operator puts on a dashboard (deploy/grafana/).

Counts that live in the database (claims, votes, training jobs, the current round) are read from
storage when Prometheus scrapes, at most once per CACHE_SECONDS, so every server process sharing
the database reports the same true values (a dashboard takes `max` over instances). What belongs
to one process (the model it serves, its players online) is that process's own: a dashboard
sums players over instances. A custom collector, the prometheus_client way for values kept
elsewhere: counts that only grow are exposed as counters, the rest as gauges.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from game_rules.consensus import FINAL_OUTCOMES, Outcome
from game_rules.rounds import RoundState
from server.learning.jobs.queue import ACTIVE_STATES, FINAL_STATES
from server.play.game import Game
from server.prometheus import LATENCY_BUCKETS, Metrics
from server.storage.base import GameCounts, Round

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # /metrics is public: a burst of scrapes costs one read of the database


class GameMetrics(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.game: Game | None = None  # set once the game has started
        self._counts: GameCounts | None = None
        self._round: Round | None = None
        self._read_at = -CACHE_SECONDS
        self._lock = asyncio.Lock()
        self.read_seconds = Histogram(
            "ftm_storage_read_seconds",
            "Time to read the game's counts from storage (one sample per scrape)",
            buckets=LATENCY_BUCKETS,
            registry=metrics.registry,
        )
        metrics.registry.register(self)

    async def refresh(self) -> None:
        """Read the counts again if the last read is older than CACHE_SECONDS."""
        if self.game is None:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < CACHE_SECONDS:
                return
            started = time.perf_counter()
            try:
                self._counts = await self.game.repo.counts()
                self._round = await self.game.repo.current_round()
            except (
                Exception
            ) as error:  # storage down: the scrape still answers, with the last counts
                log.warning("reading the game's counts failed", extra={"error": str(error)})
                return
            self.read_seconds.observe(time.perf_counter() - started)
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        game, counts, current = self.game, self._counts, self._round
        if game is None or counts is None:
            return
        yield GaugeMetricFamily(
            "ftm_round_number", "The current round (the open one, else the newest)",
            value=current.number if current else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "ftm_round_open",
            "1 while a round is open",
            value=int(current is not None and current.state == RoundState.OPEN),
        )
        served = InfoMetricFamily("ftm_model_served", "The model version this process serves")
        served.add_metric([], {"version": game.serving_version or ""})
        yield served
        yield GaugeMetricFamily(
            "ftm_players_online",
            "Players connected to this process (sum over instances)",
            value=game.validation.pushes.players_online,
        )
        unsettled = GaugeMetricFamily(
            "ftm_claims_unsettled",
            "Claims waiting: for votes (pending) or for an admin (disputed)",
            labels=["state"],
        )
        for state in ("pending", Outcome.DISPUTED):
            unsettled.add_metric([state], counts.claims.get(state, 0))
        yield unsettled
        settled = CounterMetricFamily(
            "ftm_claims_settled", "Claims settled, by outcome", labels=["outcome"]
        )
        for outcome in sorted(FINAL_OUTCOMES):
            settled.add_metric([outcome], counts.claims.get(outcome, 0))
        yield settled
        yield CounterMetricFamily("ftm_votes", "Votes cast on claims", value=counts.votes)
        active = GaugeMetricFamily(
            "ftm_training_jobs_active", "Training jobs queued or running", labels=["state"]
        )
        for state in ACTIVE_STATES:
            active.add_metric([state], counts.jobs.get(state, 0))
        yield active
        finished = CounterMetricFamily(
            "ftm_training_jobs_finished",
            "Training jobs finished, by outcome: passed and rejected are the gate's verdicts",
            labels=["outcome"],
        )
        for state in FINAL_STATES:
            finished.add_metric([state], counts.jobs.get(state, 0))
        yield finished
        yield GaugeMetricFamily(
            "ftm_training_progress",
            "The running training job's progress, 0 to 1 (0 when none runs)",
            value=progress(counts.progress),
        )


def progress(report: str | None) -> float:
    """The share of training done, from a job's progress JSON (server/learning/jobs/report.py)."""
    if not report:
        return 0.0
    at = json.loads(report)
    try:
        return ((at["epoch"] - 1) + at["step"] / at["steps"]) / at["epochs"]
    except (KeyError, TypeError, ZeroDivisionError):
        return 0.0
