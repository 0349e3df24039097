"""A crowd that takes time to think: how many claim votes arrive after their claim was decided.

`simulation` asks who is fooled (rings, oracles, farms) with tasks answered one at a time. Here
the question is the queue: validators hold their tasks for a human think time (1–5 s by
default), some walk away without answering, drawers keep submitting, and every step is the
server's own: `assignment.next_task` with each claim's live leases (`leases`), then
`validation.cast_vote` / `settle` / `late_vote` / `answer_gold`. The clock is simulated (an
event queue), so a minute of play runs in milliseconds and the same seed gives the same run.

`leases=False` hands tasks out as the server did before leases (every pending claim open to
everyone): the waste it measures is what issue 18 reported.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from game_rules import consensus as cs
from game_rules import reliability as rl
from game_rules import validation as vd
from game_rules.answers import ANSWERS
from game_rules.assignment import Candidate, ClaimTask, GoldCandidate, Task, next_task
from game_rules.leases import votes_to_settle
from game_rules.settings import RuleSettings

CANDIDATE_LIMIT = 100  # as server/storage/consensus.py


@dataclass(frozen=True)
class QueueConfig:
    validators: int = 40
    claims: int = 400
    claims_per_second: float = 1.0  # drawers' submissions, evenly spaced
    think_seconds: tuple[float, float] = (1.0, 5.0)  # uniform, per task
    walk_away: float = 0.03  # share of tasks left unanswered (the validator is gone a while)
    away_seconds: float = 30.0
    honest_accuracy: float = 0.9
    fake_share: float = 0.3  # claims whose drawer lies (the model was right)
    mnist_gold: int = 2000
    leases: bool = True  # False: no lease limit (the server before issue 18)
    seed: int = 0


@dataclass
class QueueResult:
    leases: bool
    claim_votes: int = 0
    late_votes: int = 0  # claim votes that arrived after their claim was decided
    gold_answers: int = 0
    settled: int = 0
    unfinished: int = 0
    settle_seconds: list[float] = field(default_factory=list)  # claim made → decided

    @property
    def late_share(self) -> float:
        return self.late_votes / max(self.claim_votes, 1)

    def settle_percentile(self, q: float) -> float:
        times = sorted(self.settle_seconds)
        return times[min(len(times) - 1, int(q * len(times)))] if times else 0.0


def _trusted(player_id: int, s: RuleSettings) -> rl.Voter:
    """An established validator: gold answered right over the whole trust span, hard gold too."""
    voter = rl.Voter(player_id)
    step = s.trust.established_span_seconds / 29
    for i in range(30):
        truth = i % 10
        model = (truth + 1) % 10 if i % 3 == 0 else truth
        voter = vd.answer_gold(
            voter, truth, truth, 0, s, model, i * step - s.trust.established_span_seconds
        ).voter
    return voter


@dataclass
class _Claim:
    claim: cs.Claim
    truth: int
    made: float
    leases: dict[int, float] = field(default_factory=dict)  # holder → lease end, while open


def run_queue(cfg: QueueConfig, s: RuleSettings) -> QueueResult:
    """One simulated session; returns what happened to the votes."""
    rng = random.Random(cfg.seed)
    task_rng = random.Random(cfg.seed + 1)
    result = QueueResult(cfg.leases)
    voters = {v: _trusted(v, s) for v in range(1, cfg.validators + 1)}
    pairs: dict[tuple[int, int], rl.Pair] = {}
    drawers: dict[int, rl.Drawer] = {}
    gold = [GoldCandidate(-1 - i) for i in range(cfg.mnist_gold)]
    gold_truth = {g.gold_id: rng.randrange(10) for g in gold}
    gold_answered: dict[int, set[int]] = {v: set() for v in voters}
    pending: dict[int, _Claim] = {}
    decided: dict[int, cs.Claim] = {}
    holding: dict[int, Task] = {}  # a validator's unanswered task

    events: list[tuple[float, int, str, int]] = []
    order = iter(range(1 << 62))

    def at(when: float, kind: str, who: int) -> None:
        heapq.heappush(events, (when, next(order), kind, who))

    for i in range(cfg.claims):
        at(i / cfg.claims_per_second, "claim", i + 1)
    for v in voters:
        at(task_rng.uniform(0.0, 1.0), "ask", v)

    def answer(truth: int) -> int:
        if rng.random() < cfg.honest_accuracy:
            return truth
        return rng.choice([a for a in range(ANSWERS) if a != truth])

    def candidates(now: float) -> list[Candidate]:
        """As the server reads them: the neediest pending claims, with their live leases."""
        neediest = sorted(pending.values(), key=lambda c: (len(c.claim.votes), c.made))
        found = []
        for c in neediest[:CANDIDATE_LIMIT]:
            live = sum(end > now for end in c.leases.values()) if cfg.leases else 0
            claim = c.claim
            found.append(
                Candidate(
                    claim.claim_id,
                    claim.drawer_id,
                    len(claim.votes),
                    int(c.made * 1e6),
                    frozenset(v.voter_id for v in claim.votes),
                    leases=live,
                    needed=votes_to_settle(claim, s) if claim.votes else None,
                )
            )
        return found

    def decide(claim_id: int, claim: cs.Claim, now: float) -> None:
        c = pending.pop(claim_id)
        if claim.outcome is cs.Outcome.DISPUTED:
            claim = cs.admin_decide(claim, c.truth)  # an admin looks at once
        drawer = drawers.setdefault(claim.drawer_id, rl.Drawer(claim.drawer_id))
        settled = vd.settle(
            claim, {v.voter_id: voters[v.voter_id] for v in claim.votes}, drawer, 0, 0.5, s
        )
        voters.update((v.player_id, v) for v in settled.voters)
        assert settled.drawer is not None
        drawers[claim.drawer_id] = settled.drawer
        decided[claim_id] = claim
        result.settled += 1
        result.settle_seconds.append(now - c.made)

    def vote(vid: int, task: Task, now: float) -> None:
        del holding[vid]
        if not isinstance(task, ClaimTask):
            truth = gold_truth[task.gold_id]
            voters[vid] = vd.answer_gold(voters[vid], truth, answer(truth), 0, s, truth, now).voter
            gold_answered[vid].add(task.gold_id)
            result.gold_answers += 1
            return
        result.claim_votes += 1
        open_ = pending.get(task.claim_id)
        if open_ is None:
            result.late_votes += 1
            claim = decided[task.claim_id]
            truth = claim.label if claim.label is not None else claim.claimed
            pair = pairs.setdefault((claim.drawer_id, vid), rl.Pair(claim.drawer_id, vid))
            late = vd.late_vote(claim, voters[vid], pair, answer(truth))
            voters[vid], pairs[(claim.drawer_id, vid)] = late.voter, late.pair
            return
        del open_.leases[vid]
        claim = open_.claim
        pair = pairs.setdefault((claim.drawer_id, vid), rl.Pair(claim.drawer_id, vid))
        drawer = drawers.setdefault(claim.drawer_id, rl.Drawer(claim.drawer_id))
        cast = vd.cast_vote(claim, voters[vid], pair, drawer, answer(open_.truth), s)
        pairs[(claim.drawer_id, vid)] = cast.pair
        open_.claim = cast.claim
        if not cast.claim.pending:
            decide(task.claim_id, cast.claim, now)

    def ask(vid: int, now: float) -> None:
        task = holding.get(vid)
        if isinstance(task, ClaimTask) and task.claim_id not in pending:
            task = None  # its claim was decided: the server hands out a new task
        if task is None:
            role = rl.role(voters[vid], s)
            task = next_task(vid, role, candidates(now), gold, [], gold_answered[vid], task_rng, s)
            if task is None:
                at(now + 1.0, "ask", vid)
                return
            if isinstance(task, ClaimTask):
                pending[task.claim_id].leases[vid] = now + s.gold.lease_seconds
            holding[vid] = task
        if rng.random() < cfg.walk_away:
            at(now + cfg.away_seconds, "ask", vid)
            return
        at(now + rng.uniform(*cfg.think_seconds), "vote", vid)

    while events:
        now, _, kind, who = heapq.heappop(events)
        if kind == "claim":
            truth = rng.randrange(10)
            model = rng.choice([d for d in range(10) if d != truth])
            claimed = truth
            if rng.random() < cfg.fake_share:
                model = truth
                claimed = rng.choice([d for d in range(10) if d != truth])
            drawer_id = 10_000 + who % 50
            drawer = drawers.setdefault(drawer_id, rl.Drawer(drawer_id))
            claim = cs.new_claim(
                who,
                drawer_id,
                claimed,
                model,
                rl.drawer_prior(drawer, s),
                s,
                rl.claim_extra_voters(drawer, s),
            )
            pending[who] = _Claim(claim, truth, now)
        elif kind == "vote":
            vote(who, holding[who], now)
            at(now, "ask", who)
        elif not pending and len(decided) == cfg.claims:
            continue  # all claims decided: validators go home
        else:
            ask(who, now)
    result.unfinished = cfg.claims - len(decided)
    return result


def queue_table(before: QueueResult, after: QueueResult) -> str:
    """Before and after leases, side by side."""
    head = (
        f"{'tasks':<16}{'claim votes':>12}{'late':>8}{'late %':>8}{'gold':>7}"
        f"{'settle p50 s':>13}{'p90 s':>8}{'unfinished':>11}"
    )
    lines = [head, "-" * len(head)]
    for r in (before, after):
        name = "with leases" if r.leases else "no leases"
        lines.append(
            f"{name:<16}{r.claim_votes:>12}{r.late_votes:>8}{r.late_share:>8.2%}"
            f"{r.gold_answers:>7}{r.settle_percentile(0.5):>13.1f}"
            f"{r.settle_percentile(0.9):>8.1f}{r.unfinished:>11}"
        )
    return "\n".join(lines)
