"""How much a validator's vote is worth, and when it is worth nothing.

Accuracy comes from gold only. A gold task has a known answer (an MNIST test digit, or a claim
settled with high confidence) and is mixed in unannounced, so a validator cannot tell it from a
real task. Agreeing with the crowd never earns trust: if it did, a group of accounts agreeing
with each other would certify itself. Each account starts from a Beta prior (a new account is
assumed mediocre and must answer some gold before its votes count); every gold answer updates it.
Once an account has answered enough gold, its per-digit confusion counts (a Dirichlet posterior
whose prior mean is the one-number accuracy model) say how it errs — e.g. a voter who reads
every 4 as a 9 says little when they answer "9".

Gold cannot catch collusion: a sybil account run by a cheating drawer answers gold honestly and
lies only on its owner's claims. Three defences, all built on what the server knows (who drew
each claim, who voted what), and each able only to *remove* trust, never to grant it:

- **Standing**: a voter who is on the losing side of settled claims far more often than their
  gold accuracy predicts (a one-sided z-test), or who keeps losing *together* with another
  voter on the same wrong answer (honest mistakes scatter, a ring's do not), stops counting.
  Stops sybils that confirm many lies; an honest voter who trips it by bad luck is put on
  probation and clears it by voting.
- **Pairs**: a voter who agrees with one drawer's claims far more often than the crowd's verdicts
  on that drawer warrant stops counting on that drawer's claims. Stops small rings that only
  ever vote for their own drawer, whose overall standing stays clean.
- **Drawer prior**: the prior that a claim is true follows the drawer's settled history, so a
  drawer whose claims keep failing needs more evidence to be believed. Stops repeated lying.

The cap `max_likelihood_ratio` bounds how far one vote can move a claim's posterior, so a voter
with a perfect gold record is still just one voter; "more voters when anyone dissents" lives in
`consensus`. Every record here is a frozen dataclass of plain ints, so a database row holds it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from game_rules.answers import ANSWERS, check_answer, check_digit
from game_rules.settings import RuleSettings


class Status(StrEnum):
    ACTIVE = "active"
    QUARANTINED = "quarantined"  # votes stop counting while an admin looks
    BANNED = "banned"


class Role(StrEnum):
    """What tasks a validator gets next (see `assignment`)."""

    WARMUP = "warmup"  # too few gold answers yet: gold only
    TRUSTED = "trusted"  # claims, with gold mixed in
    GOLD_ONLY = "gold_only"  # gold accuracy too low: only gold can change that
    PROBATION = "probation"  # standing suspended: some claims (not counted) to clear the record
    OUT = "out"  # quarantined or banned: no tasks


_EMPTY_CONFUSION = (0,) * (ANSWERS * ANSWERS)


@dataclass(frozen=True)
class Voter:
    """A validator's record: gold confusion counts (row = truth, column = answer) and standing."""

    player_id: int
    confusion: tuple[int, ...] = _EMPTY_CONFUSION
    settled: int = 0  # their votes on claims that have since settled
    lost: int = 0  # ...of which they were on the losing side
    lost_together: int = 0  # ...with another counted voter giving the same losing answer
    status: Status = Status.ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "confusion": list(self.confusion), "status": str(self.status)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Voter:
        confusion = tuple(int(n) for n in data["confusion"])
        if len(confusion) != ANSWERS * ANSWERS:
            raise ValueError(f"a confusion table has {ANSWERS * ANSWERS} counts")
        return cls(
            player_id=int(data["player_id"]),
            confusion=confusion,
            settled=int(data["settled"]),
            lost=int(data["lost"]),
            lost_together=int(data["lost_together"]),
            status=Status(data["status"]),
        )

    @property
    def gold_total(self) -> int:
        return sum(self.confusion)

    @property
    def gold_correct(self) -> int:
        return sum(self.confusion[t * ANSWERS + t] for t in range(ANSWERS))


@dataclass(frozen=True)
class Pair:
    """Votes by `voter_id` on claims drawn by `drawer_id`, and how many confirmed the claim."""

    drawer_id: int
    voter_id: int
    votes: int = 0
    agreed: int = 0


@dataclass(frozen=True)
class Drawer:
    """A drawer's settled claims and how many were verified."""

    player_id: int
    settled: int = 0
    verified: int = 0


@dataclass(frozen=True)
class Evidence:
    """What one vote says: P(answer | truth) for each of the 11 truths, and whether it counts."""

    counts: bool
    reason: str  # "counted", or why not: "new_account", "low_reliability", "standing", ...
    likelihood: tuple[float, ...]


# --- updates -------------------------------------------------------------------------------


def record_gold(voter: Voter, truth: int, answer: int) -> Voter:
    check_answer(truth)
    check_answer(answer)
    counts = list(voter.confusion)
    counts[truth * ANSWERS + answer] += 1
    return replace(voter, confusion=tuple(counts))


def record_settled_vote(voter: Voter, won: bool, lost_together: bool = False) -> Voter:
    if won and lost_together:
        raise ValueError("a vote that won cannot have lost together with another")
    return replace(
        voter,
        settled=voter.settled + 1,
        lost=voter.lost + (not won),
        lost_together=voter.lost_together + lost_together,
    )


def record_pair_vote(pair: Pair, claimed: int, answer: int) -> Pair:
    check_digit(claimed)
    check_answer(answer)
    return replace(pair, votes=pair.votes + 1, agreed=pair.agreed + (answer == claimed))


def record_drawer_claim(drawer: Drawer, verified: bool) -> Drawer:
    return replace(drawer, settled=drawer.settled + 1, verified=drawer.verified + verified)


def set_status(voter: Voter, status: Status) -> Voter:
    return replace(voter, status=Status(status))


# --- estimates -----------------------------------------------------------------------------


def accuracy(voter: Voter, s: RuleSettings) -> float:
    """Posterior mean of the Beta(prior_correct, prior_wrong) accuracy after the gold answers."""
    r = s.reliability
    return (r.prior_correct + voter.gold_correct) / (
        r.prior_correct + r.prior_wrong + voter.gold_total
    )


def drawer_prior(drawer: Drawer, s: RuleSettings) -> float:
    """Prior probability that this drawer's next claim is true."""
    a, b = s.collusion.drawer_prior_verified, s.collusion.drawer_prior_rejected
    return (a + drawer.verified) / (a + b + drawer.settled)


def _excess_z(observed: int, trials: int, rate: float) -> float:
    """How many standard deviations `observed` successes lie above `trials * rate`."""
    rate = min(max(rate, 1e-3), 1 - 1e-3)
    return (observed - trials * rate) / math.sqrt(trials * rate * (1 - rate))


def standing_suspended(voter: Voter, s: RuleSettings) -> bool:
    """Lost on settled claims far more often than gold accuracy predicts, or lost in company.

    Honest mistakes are scattered: two careful voters rarely give the same wrong answer. A ring's
    accounts lose together, on the same answer (the claim they were told to confirm), so the
    "lost together" rate is expected to be tiny and is the sharper of the two tests.
    """
    k = s.collusion
    if voter.settled < k.standing_min_settled:
        return False
    expected = max(1.0 - accuracy(voter, s), k.standing_error_floor)
    return (
        _excess_z(voter.lost, voter.settled, expected) > k.standing_z
        or _excess_z(voter.lost_together, voter.settled, k.standing_together_floor) > k.standing_z
    )


def pair_suspect(pair: Pair, drawer: Drawer, s: RuleSettings) -> bool:
    """Agrees with this drawer far more often than the crowd's verdicts on the drawer."""
    k = s.collusion
    if pair.votes < k.pair_min_votes:
        return False
    expected = drawer_prior(drawer, s)
    excess_rate = pair.agreed / pair.votes - expected
    return excess_rate >= k.pair_margin and _excess_z(pair.agreed, pair.votes, expected) > k.pair_z


def role(voter: Voter, s: RuleSettings) -> Role:
    if voter.status is not Status.ACTIVE:
        return Role.OUT
    if voter.gold_total < s.gold.warmup_answers:
        return Role.WARMUP
    if accuracy(voter, s) < s.reliability.min_reliability:
        return Role.GOLD_ONLY
    if standing_suspended(voter, s):
        return Role.PROBATION
    return Role.TRUSTED


def likelihood(voter: Voter, answer: int, s: RuleSettings) -> tuple[float, ...]:
    """P(voter answers `answer` | truth t) for t in 0..10, capped so no vote is decisive alone.

    The one-number model: right with probability `acc`, otherwise any of the 10 wrong answers
    evenly. With enough gold, each truth's row is a Dirichlet posterior over the confusion
    counts whose prior mean is that one-number model (`confusion_prior_strength` pseudo-answers).
    Finally no entry may be smaller than 1/`max_likelihood_ratio` of the "answer is the truth"
    entry: one vote can shift the odds between two answers by at most that factor, however good
    the voter's gold record, because independence between voters is an assumption a ring breaks.
    """
    check_answer(answer)
    r = s.reliability
    acc = accuracy(voter, s)
    wrong = (1.0 - acc) / (ANSWERS - 1)
    use_confusion = voter.gold_total >= r.confusion_min_gold
    row: list[float] = []
    for truth in range(ANSWERS):
        p = acc if truth == answer else wrong
        if use_confusion:
            base = truth * ANSWERS
            n = sum(voter.confusion[base : base + ANSWERS])
            k = r.confusion_prior_strength
            p = (voter.confusion[base + answer] + k * p) / (n + k)
        row.append(p)
    floor = row[answer] / r.max_likelihood_ratio
    return tuple(max(p, floor) for p in row)


def assess_vote(voter: Voter, pair: Pair, drawer: Drawer, answer: int, s: RuleSettings) -> Evidence:
    """The evidence one vote gives on a claim drawn by `drawer` (records taken before the vote)."""
    check_answer(answer)
    if pair.voter_id != voter.player_id or pair.drawer_id != drawer.player_id:
        raise ValueError("the pair record must be for this voter and this drawer")
    current = role(voter, s)
    reason = {
        Role.OUT: str(voter.status),
        Role.WARMUP: "new_account",
        Role.GOLD_ONLY: "low_reliability",
        Role.PROBATION: "standing",
    }.get(current)
    if reason is None and pair_suspect(pair, drawer, s):
        reason = "suspect_pair"
    flat = (1.0 / ANSWERS,) * ANSWERS
    if reason is not None:
        return Evidence(counts=False, reason=reason, likelihood=flat)
    return Evidence(counts=True, reason="counted", likelihood=likelihood(voter, answer, s))
