"""Issue 18: a crowd with human think time (1–5 s) wastes at most 2% of its claim votes on
claims decided while it thought; without leases the same crowd wastes far more."""

from __future__ import annotations

from dataclasses import replace

from game_rules.queue_simulation import QueueConfig, run_queue
from server.config import default_rules

S = default_rules()
SMALL = QueueConfig(validators=40, claims=80, seed=3)


def test_with_leases_at_most_two_percent_of_claim_votes_come_too_late() -> None:
    after = run_queue(SMALL, S)
    assert after.unfinished == 0
    assert after.claim_votes >= 3 * SMALL.claims
    assert after.late_share <= 0.02, after


def test_without_leases_the_same_crowd_piles_onto_decided_claims() -> None:
    before = run_queue(replace(SMALL, leases=False), S)
    assert before.unfinished == 0
    assert before.late_share > 0.10, before


def test_the_same_seed_gives_the_same_run() -> None:
    assert run_queue(SMALL, S) == run_queue(SMALL, S)
