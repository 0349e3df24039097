"""A seeded crowd simulation of the validation rules, against two plain baselines.

The world: drawers submit claims; 40% are fakes (the drawer lies about the digit). Validators
are honest (≈95% accurate), random clickers, or attackers, all run by cheating drawers:
**colluders** answer honestly everywhere (gold included) except on their own ring's drawings,
where they confirm the lie; **model oracles** answer everything as the served model reads it
(and confirm their ring's lies); **sleepers** behave honestly until `sleepers_wake` of the run,
then collude; an **account farm** makes `farm_accounts` fresh accounts for each fake claim, which
answer gold with the model in a burst and then confirm the fake. By default all cheaters and
their accounts form one ring — the worst case, since then every fake has colluders in the crowd.

The simulation is honest about what the rules may know: the rules see only what the server
stores (who drew each claim, who voted what, gold answers with the served model's reading and
their time); nothing marks an account as an attacker. Tasks are handed out by
`assignment.next_task`, votes, settlements and gold answers go through `validation` (the very
functions the server calls), and a disputed claim is decided by an (always correct) admin. A
clock advances `seconds_per_task` per task request, so trust that takes a day takes a day here.

Numbers (`CrowdConfig`): 2,000 claims; 100 validators; 25 honest validators also draw (true
claims only), 10 cheating drawers lie on 80% of their claims (half of all claims come from
them, so 40% are fakes; 10% of fakes are scribbles whose truth is "not a digit"). An honest
mistake on a true claim reads the model's answer half the time (such drawings are ambiguous).
Between two new claims, 8 task requests come from validators picked at random. MNIST gold: 30%
of it is hard (the served model misreads it); settled claims become gold too.

Three policies run on the same world, with the same seeds:
- `ours`: the game's rules (`validation`, `assignment`, and through them `reliability` and
  `consensus`);
- `dynabench`: every vote weighs the same; the first answer to get 3 votes wins (cap 10 votes);
- `majority5`: 5 votes, the answer with 3 or more wins, otherwise admin review.

Measured: fakes accepted = fakes the crowd verified / fakes; true rejected = true claims the
crowd settled on another answer / true claims; votes per claim over every finished claim
(disputed ones included); disputed share; gold answers per claim (warm-up, gold-only accounts,
farm accounts and idle requests included). `SCENARIOS` are issue 11's; `bench/crowd.py` prints
them. While nobody is established yet (the first simulated day) claims wait or go to review, so
most disputes come early; most fakes accepted at 50% colluders come before the ring's drawers
are found clustered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from game_rules import consensus as cs
from game_rules import reliability as rl
from game_rules import validation as vd
from game_rules.answers import ANSWERS, NOT_A_DIGIT
from game_rules.assignment import Candidate, ClaimTask, GoldCandidate, next_task
from game_rules.reliability import Role
from game_rules.settings import RuleSettings

POLICIES = ("ours", "dynabench", "majority5")


@dataclass(frozen=True)
class CrowdConfig:
    claims: int = 2000
    validators: int = 100
    honest_share: float = 0.70
    sybil_share: float = 0.15  # the rest are random clickers
    honest_accuracy: float = 0.95
    confusable_share: float = 0.5  # an honest mistake on a true claim reads the model's answer
    fake_share: float = 0.40
    honest_drawers: int = 25  # drawn from the honest validators
    cheaters: int = 10
    cheater_lie_rate: float = 0.8
    rings: int = 1
    tasks_per_claim: int = 8  # task requests between two new claims
    mnist_gold: int = 1000
    hard_gold_share: float = 0.3  # MNIST gold the served model misreads
    oracle_share: float = 0.0  # model-oracle bots: answer everything as the model reads it
    farm_accounts: int = 0  # fresh accounts a cheater makes for each fake claim
    sleeper_share: float = 0.0  # behave honestly until `sleepers_wake`, then collude
    sleepers_wake: float = 0.5  # share of the claims after which sleepers collude
    seconds_per_task: float = 60.0  # the clock: one task request per this many seconds
    seed: int = 0


@dataclass
class Result:
    policy: str
    fakes: int = 0
    fakes_accepted: int = 0
    trues: int = 0
    trues_rejected: int = 0
    disputed: int = 0
    finished: int = 0
    unfinished: int = 0
    claim_votes: int = 0
    gold_answers: int = 0

    @property
    def fake_accept_rate(self) -> float:
        return self.fakes_accepted / max(self.fakes, 1)

    @property
    def true_reject_rate(self) -> float:
        return self.trues_rejected / max(self.trues, 1)

    @property
    def votes_per_claim(self) -> float:
        return self.claim_votes / max(self.finished, 1)

    @property
    def dispute_rate(self) -> float:
        return self.disputed / max(self.finished, 1)


@dataclass(frozen=True)
class _World:
    honest: tuple[int, ...]
    clickers: tuple[int, ...]
    sybil_ring: dict[int, int]  # sybil id → ring (oracle bots and sleepers included)
    cheater_ring: dict[int, int]  # cheater id → ring
    honest_drawers: tuple[int, ...]
    oracles: frozenset[int] = frozenset()
    sleepers: frozenset[int] = frozenset()


@dataclass(frozen=True)
class _Drawing:
    claim_id: int
    drawer_id: int
    truth: int
    claimed: int
    model_label: int

    @property
    def fake(self) -> bool:
        return self.truth != self.claimed


def _world(cfg: CrowdConfig) -> _World:
    rng = random.Random(cfg.seed)
    ids = list(range(1, cfg.validators + 1))
    rng.shuffle(ids)
    n_honest = round(cfg.validators * cfg.honest_share)
    n_sybil = round(cfg.validators * cfg.sybil_share)
    n_oracle = round(cfg.validators * cfg.oracle_share)
    n_sleeper = round(cfg.validators * cfg.sleeper_share)
    honest = tuple(ids[:n_honest])
    bad = ids[n_honest : n_honest + n_sybil + n_oracle + n_sleeper]
    clickers = tuple(ids[n_honest + len(bad) :])
    cheaters = range(10_001, 10_001 + cfg.cheaters)
    return _World(
        honest=honest,
        clickers=clickers,
        sybil_ring={s: i % cfg.rings for i, s in enumerate(bad)},
        cheater_ring={c: i % cfg.rings for i, c in enumerate(cheaters)},
        honest_drawers=honest[: cfg.honest_drawers],
        oracles=frozenset(bad[n_sybil : n_sybil + n_oracle]),
        sleepers=frozenset(bad[n_sybil + n_oracle :]),
    )


def _drawing(claim_id: int, world: _World, cfg: CrowdConfig, rng: random.Random) -> _Drawing:
    cheater_share = cfg.fake_share / cfg.cheater_lie_rate
    truth = rng.randrange(10)
    if rng.random() < cheater_share:
        drawer = rng.choice(sorted(world.cheater_ring))
        if rng.random() < cfg.cheater_lie_rate:
            # A fake: the model reads the drawing right (or it is a scribble), the claim lies.
            if rng.random() < 0.1:
                truth = NOT_A_DIGIT
            model = truth if truth != NOT_A_DIGIT else rng.randrange(10)
            claimed = rng.choice([d for d in range(10) if d not in (truth, model)])
            return _Drawing(claim_id, drawer, truth, claimed, model)
    else:
        drawer = rng.choice(world.honest_drawers)
    model = rng.choice([d for d in range(10) if d != truth])
    return _Drawing(claim_id, drawer, truth, truth, model)


def _answer(
    voter: int,
    truth: int,
    claimed: int,
    model: int,
    drawer: int,
    world: _World,
    cfg: CrowdConfig,
    rng: random.Random,
    awake: bool = True,
) -> int:
    """`voter`'s answer on a drawing; `awake` says whether sleepers collude yet."""
    if voter in world.clickers:
        return rng.randrange(ANSWERS)
    ring = world.sybil_ring.get(voter)
    if ring is None and voter >= _FARM_IDS:
        ring = 0  # farm accounts serve every cheater
    if (
        ring is not None
        and world.cheater_ring.get(drawer) == ring
        and (awake or voter not in world.sleepers)
    ):
        return claimed
    if voter in world.oracles or voter >= _FARM_IDS:
        return model  # asks the game's own model
    if rng.random() < cfg.honest_accuracy:
        return truth
    # A drawing that fooled the model is often ambiguous to people in the same way.
    if model != truth and rng.random() < cfg.confusable_share:
        return model
    return rng.choice([a for a in range(ANSWERS) if a != truth])


_FARM_IDS = 1_000_000  # account-farm ids start here


@dataclass
class _Gold:
    candidate: GoldCandidate
    truth: int
    claimed: int  # what its drawer claimed (MNIST gold: the truth)
    model: int


@dataclass
class _Ours:
    s: RuleSettings
    voters: dict[int, rl.Voter] = field(default_factory=dict)
    pairs: dict[tuple[int, int], rl.Pair] = field(default_factory=dict)
    drawers: dict[int, rl.Drawer] = field(default_factory=dict)

    def voter(self, vid: int) -> rl.Voter:
        return self.voters.setdefault(vid, rl.Voter(vid))

    def drawer(self, did: int) -> rl.Drawer:
        return self.drawers.setdefault(did, rl.Drawer(did))

    def pair(self, did: int, vid: int) -> rl.Pair:
        return self.pairs.setdefault((did, vid), rl.Pair(did, vid))


def run(policy: str, cfg: CrowdConfig, s: RuleSettings) -> Result:
    """Simulate one policy on the world `cfg` describes."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    world = _world(cfg)
    world_rng = random.Random(cfg.seed * 7919 + 1)  # same claims for every policy
    task_rng = random.Random(cfg.seed * 7919 + 2)
    answer_rng = random.Random(cfg.seed * 7919 + 3)
    validators = sorted((*world.honest, *world.clickers, *world.sybil_ring))
    result = Result(policy)
    ours = _Ours(s)

    gold_digits: list[GoldCandidate] = []
    gold_claims: list[GoldCandidate] = []
    gold_by_id: dict[int, _Gold] = {}
    for i in range(cfg.mnist_gold):
        truth = world_rng.randrange(10)
        model = truth
        if world_rng.random() < cfg.hard_gold_share:
            model = world_rng.choice([d for d in range(10) if d != truth])
        gold_digits.append(GoldCandidate(-1 - i))
        gold_by_id[-1 - i] = _Gold(gold_digits[-1], truth, truth, model)
    gold_answered: dict[int, set[int]] = {v: set() for v in validators}
    clock = {"now": 0.0, "claim": 0}
    farm_ids = iter(range(_FARM_IDS, _FARM_IDS * 2))

    drawings: dict[int, _Drawing] = {}
    claims: dict[int, cs.Claim] = {}  # ours
    tallies: dict[int, list[int]] = {}  # baselines: votes per answer
    pending: dict[int, Candidate] = {}

    def finish(d: _Drawing, label: int | None, votes: int) -> None:
        del pending[d.claim_id]
        result.finished += 1
        result.claim_votes += votes
        if label is None:
            result.disputed += 1
        elif d.fake:
            result.fakes_accepted += label == d.claimed
        else:
            result.trues_rejected += label != d.claimed

    def settle_ours(d: _Drawing, claim: cs.Claim) -> None:
        """As the server does: settle on the crowd's verdict, or (disputed) on the admin's."""
        crowd_label = claim.label
        if claim.outcome is cs.Outcome.DISPUTED:
            claim = cs.admin_decide(claim, d.truth)
        claims[d.claim_id] = claim
        voters = {v.voter_id: ours.voter(v.voter_id) for v in claim.votes}
        drawer = ours.drawer(d.drawer_id)
        settled = vd.settle(claim, voters, drawer, 0, 0.0, s, by_admin=crowd_label is None)
        ours.voters.update((v.player_id, v) for v in settled.voters)
        assert settled.drawer is not None
        ours.drawers[d.drawer_id] = settled.drawer
        if settled.gold_label is not None:
            g = _Gold(
                GoldCandidate(d.claim_id, d.drawer_id, frozenset(voters)),
                settled.gold_label,
                d.claimed,
                d.model_label,
            )
            gold_claims.append(g.candidate)
            gold_by_id[d.claim_id] = g
        finish(d, crowd_label, len(claim.votes))

    def serve(vid: int) -> int | None:
        """One task request by `vid`; returns the claim they voted on, if any."""
        if vid < _FARM_IDS:
            clock["now"] += cfg.seconds_per_task
        awake = clock["claim"] > cfg.claims * cfg.sleepers_wake
        if policy == "ours":
            role = rl.role(ours.voter(vid), s)
            task = next_task(
                vid,
                role,
                list(pending.values()),
                gold_digits,
                gold_claims,
                gold_answered[vid],
                task_rng,
                s,
            )
        else:
            task = next_task(vid, Role.TRUSTED, list(pending.values()), [], [], (), task_rng, s)
        if task is None:
            return None
        if not isinstance(task, ClaimTask):
            g = gold_by_id[task.gold_id]
            drawer = g.candidate.drawer_id or 0
            answer = _answer(
                vid, g.truth, g.claimed, g.model, drawer, world, cfg, answer_rng, awake
            )
            gold_answered[vid].add(task.gold_id)
            voter = ours.voter(vid)
            ours.voters[vid] = vd.answer_gold(
                voter, g.truth, answer, 0, s, g.model, clock["now"]
            ).voter
            result.gold_answers += 1
            return None
        d = drawings[task.claim_id]
        answer = _answer(
            vid, d.truth, d.claimed, d.model_label, d.drawer_id, world, cfg, answer_rng, awake
        )
        c = pending[d.claim_id]
        pending[d.claim_id] = Candidate(
            c.claim_id, c.drawer_id, c.votes + 1, c.created, c.voters | {vid}
        )
        if policy == "ours":
            cast = vd.cast_vote(
                claims[d.claim_id],
                ours.voter(vid),
                ours.pair(d.drawer_id, vid),
                ours.drawer(d.drawer_id),
                answer,
                s,
            )
            ours.pairs[(d.drawer_id, vid)] = cast.pair
            claims[d.claim_id] = cast.claim
            if not cast.claim.pending:
                settle_ours(d, cast.claim)
            return d.claim_id
        tally = tallies[d.claim_id]
        tally[answer] += 1
        n = sum(tally)
        if policy == "dynabench":
            if tally[answer] >= 3:
                finish(d, answer, n)
            elif n >= 10:
                finish(d, None, n)
        elif n >= 5:
            best = max(range(ANSWERS), key=lambda a: tally[a])
            finish(d, best if tally[best] >= 3 else None, n)
        return d.claim_id

    def farm(target: int) -> None:
        """A cheater's fresh accounts: each asks for tasks in a burst until it votes on the
        target claim (or gives up), answering gold as the model reads it."""
        for _ in range(cfg.farm_accounts):
            vid = next(farm_ids)
            gold_answered[vid] = set()
            for _ in range(40):
                if target not in pending or serve(vid) == target:
                    break

    for claim_id in range(1, cfg.claims + 1):
        clock["claim"] = claim_id
        d = _drawing(claim_id, world, cfg, world_rng)
        drawings[claim_id] = d
        if d.fake:
            result.fakes += 1
        else:
            result.trues += 1
        pending[claim_id] = Candidate(claim_id, d.drawer_id, 0, claim_id)
        if policy == "ours":
            drawer = ours.drawer(d.drawer_id)
            prior, extra = rl.drawer_prior(drawer, s), rl.claim_extra_voters(drawer, s)
            claims[claim_id] = cs.new_claim(
                claim_id, d.drawer_id, d.claimed, d.model_label, prior, s, extra
            )
        else:
            tallies[claim_id] = [0] * ANSWERS
        if d.fake and cfg.farm_accounts:
            farm(claim_id)
        for _ in range(cfg.tasks_per_claim):
            serve(task_rng.choice(validators))
    for _ in range(cfg.claims * cfg.tasks_per_claim):
        if not pending:
            break
        serve(task_rng.choice(validators))
    result.unfinished = len(pending)
    return result


def table(results: list[tuple[str, Result]]) -> str:
    """A plain-text table: one row per (scenario, policy)."""
    head = (
        f"{'scenario':<15}{'policy':<11}{'fakes acc.':>11}{'true rej.':>11}"
        f"{'votes/claim':>12}{'disputed':>10}{'gold/claim':>11}{'unfinished':>11}"
    )
    lines = [head, "-" * len(head)]
    for scenario, r in results:
        lines.append(
            f"{scenario:<15}{r.policy:<11}{r.fake_accept_rate:>10.2%} {r.true_reject_rate:>10.2%}"
            f"{r.votes_per_claim:>12.2f}{r.dispute_rate:>10.2%}"
            f"{r.gold_answers / max(r.finished, 1):>11.2f}{r.unfinished:>11}"
        )
    return "\n".join(lines)


SCENARIOS: dict[str, dict[str, Any]] = {
    # name → CrowdConfig changes; 15% random clickers throughout, the rest honest
    "15% colluders": {"sybil_share": 0.15, "honest_share": 0.70},
    "30% colluders": {"sybil_share": 0.30, "honest_share": 0.55},
    "50% colluders": {"sybil_share": 0.50, "honest_share": 0.35},
    "30% oracles": {"oracle_share": 0.30, "sybil_share": 0.0, "honest_share": 0.55},
    "farm k=5": {"farm_accounts": 5, "sybil_share": 0.0, "honest_share": 0.85},
    "20% sleepers": {"sleeper_share": 0.20, "sybil_share": 0.0, "honest_share": 0.65},
}


def standard_table(
    s: RuleSettings, seed: int = 0, claims: int = 2000, rings: int = 1
) -> tuple[str, dict[tuple[str, str], Result]]:
    """Issue 11's scenarios (`SCENARIOS`) for all three policies."""
    results: dict[tuple[str, str], Result] = {}
    rows = []
    for name, changes in SCENARIOS.items():
        cfg = replace(CrowdConfig(claims=claims, rings=rings, seed=seed), **changes)
        for policy in POLICIES:
            r = run(policy, cfg, s)
            results[(name, policy)] = r
            rows.append((name, r))
    return table(rows), results
