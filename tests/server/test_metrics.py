"""/metrics as an operator's dashboard reads it: the process and runtime collectors, the game's
state (true across processes: read from the database), no `_created` series, and every metric
the Grafana dashboard in deploy/ queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from consensus_helpers import claim_task, make_claim, next_of
from live_server import ThreadServer, join
from prometheus_client.parser import text_string_to_metric_families

from server.web import game_metrics

pytestmark = pytest.mark.consensus_rules

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fool-the-model.json"


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scrape reads the database again (the server runs in this process)."""
    monkeypatch.setattr(game_metrics, "CACHE_SECONDS", 0.0)


def scrape(server: ThreadServer) -> dict[str, float]:
    """Every sample of /metrics, by name with its labels as Prometheus prints them."""
    samples = {}
    for family in text_string_to_metric_families(httpx.get(f"{server.http}/metrics").text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_a_played_claim_moves_the_game_metrics(server: ThreadServer, data_dir: Path) -> None:
    before = scrape(server)
    assert before["ftm_round_number"] == 1 and before["ftm_round_open"] == 1
    assert before['ftm_model_served_info{version="v1"}'] == 1
    assert before['ftm_claims_unsettled{state="pending"}'] == 0 and before["ftm_votes_total"] == 0
    assert before['ftm_training_jobs_active{state="running"}'] == 0
    assert before["ftm_training_progress"] == 0

    ada, _, submitted = await make_claim(server.ws, "Ada")
    during = scrape(server)
    assert during['ftm_claims_unsettled{state="pending"}'] == 1
    assert during["ftm_players_online"] == 1

    voters = []
    for name in ("Grace", "Linus", "Alan"):
        client, _ = await join(server.ws, name)
        voters.append((client, (await claim_task(client, data_dir))["task_id"]))
    for client, task_id in voters:
        vote = {"type": "vote", "id": "v", "task_id": task_id, "answer": submitted["label"]}
        assert (await client.request(vote, "voted"))["type"] == "voted"
    assert (await next_of(ada, "claim_settled"))["outcome"] == "verified"

    after = scrape(server)
    assert after['ftm_claims_unsettled{state="pending"}'] == 0
    assert after['ftm_claims_settled_total{outcome="verified"}'] == 1
    assert after["ftm_votes_total"] == 3
    assert after["ftm_players_online"] == 4
    assert after["ftm_storage_read_seconds_count"] >= 3
    for client in (ada, *(c for c, _ in voters)):
        await client.close()


def test_process_and_runtime_collectors_and_no_created_series(server: ThreadServer) -> None:
    samples = scrape(server)
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "python_gc_collections_total{generation=\"0\"}"):  # fmt: skip
        assert name in samples, name
    assert any(name.startswith("python_info{") for name in samples)
    assert not [name for name in samples if "_created" in name]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]


def test_every_metric_the_dashboard_queries_is_exposed(server: ThreadServer) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    text = httpx.get(f"{server.http}/metrics").text
    # Samples, and families that have none yet (a labelled counter before its first event).
    exposed = set(re.findall(r"^(?:# TYPE )?([a-z_]+)[{ ]", text, re.M))
    for query in queries:
        for name in re.findall(r"\b(?:ftm|process|python)_[a-z_]+", query):
            assert name in exposed, f"{name} (in {query!r}) is not in /metrics"


def test_training_progress_from_a_jobs_report() -> None:
    report = {"epoch": 2, "epochs": 2, "step": 47, "steps": 94}
    assert game_metrics.progress(json.dumps(report)) == 0.75
    assert game_metrics.progress(None) == game_metrics.progress("{}") == 0.0
