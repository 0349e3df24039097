"""Prometheus metrics, in a registry owned by one app (so tests can run several apps at once).

Beside the game's own: prometheus_client's process (CPU, memory, open files), platform and
garbage-collector collectors. No `_created` series: they double the exposition and no dashboard
reads them. The game's state read from storage is added by server/web/game_metrics.py.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.connections = Gauge("ftm_connections", "Open websocket connections", registry=r)
        self.messages = Counter(
            "ftm_messages", "Client messages received, by type", ["type"], registry=r
        )
        self.prediction_seconds = Histogram(
            "ftm_prediction_seconds",
            "Time to answer a drawing: preprocessing plus inference",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "ftm_commit_seconds",
            "Time to store a submission durably (waiting for the writer included)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.guesses_dropped = Counter(
            "ftm_guesses_dropped",
            "Live guesses superseded by a newer one before served",
            registry=r,
        )
        self.submissions = Counter(
            "ftm_submissions", "Committed submissions, by outcome", ["outcome"], registry=r
        )
        self.errors = Counter("ftm_errors", "Error replies, by code", ["code"], registry=r)
        self.disconnects = Counter(
            "ftm_disconnects", "Connections the server closed, by close code", ["code"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
