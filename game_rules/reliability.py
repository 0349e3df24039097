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

Gold alone is not enough either: a bot can answer easy gold by asking the game's own model, and
a farm can answer a burst of gold with many fresh accounts. So trust is *slow to earn*
(`trust_weight`): it grows with work (gold right, hard gold twice, votes that matched settled
claims) and with time (the span over which gold was answered), and only a voter with full
weight is *established*; `consensus` verifies a claim only with enough established confirmers.
Hard gold (items the served model gets wrong) also exposes **model oracles**: a voter whose gold
answers follow the model's wrong guesses stops counting (`model_oracle`). Moderators, marked by
an admin, decide claims as an admin would, so a small game still settles.

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
    LEARNING = "learning"  # past warm-up, trust still being earned: claims and more gold
    GOLD_ONLY = "gold_only"  # gold accuracy too low: only gold can change that
    PROBATION = "probation"  # standing suspended or clustered: a few uncounted claims to clear it
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
    # Trust that costs time and work (see `trust_weight`): when gold answering began and last
    # happened, and gold the served model got wrong ("hard" gold: a bot asking the model fails it).
    first_gold_at: float = 0.0
    last_gold_at: float = 0.0
    hard_gold: int = 0  # gold answered whose served-model label was wrong
    hard_right: int = 0  # ...answered with the truth
    followed_model: int = 0  # ...answered with the model's wrong label (a model oracle does)
    moderator: bool = False  # marked by an admin: their vote decides, as an admin's would
    # The collusion graph, folded per voter: on each settled claim they voted on (counted), how
    # far their "confirm" exceeded the crowd's confirmation rate on that drawer, and its variance.
    confirm_excess: float = 0.0
    confirm_variance: float = 0.0
    refuted_confirms: int = 0  # claims they confirmed that were then not verified
    gold_streak: int = 0  # gold answered right in a row, up to the latest (a miss resets it)

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
            first_gold_at=float(data.get("first_gold_at", 0.0)),
            last_gold_at=float(data.get("last_gold_at", 0.0)),
            hard_gold=int(data.get("hard_gold", 0)),
            hard_right=int(data.get("hard_right", 0)),
            followed_model=int(data.get("followed_model", 0)),
            moderator=bool(data.get("moderator", False)),
            confirm_excess=float(data.get("confirm_excess", 0.0)),
            confirm_variance=float(data.get("confirm_variance", 0.0)),
            refuted_confirms=int(data.get("refuted_confirms", 0)),
            gold_streak=int(data.get("gold_streak", 0)),
        )

    @property
    def matched(self) -> int:
        """Votes on the winning side of claims that have since settled."""
        return self.settled - self.lost

    @property
    def gold_span(self) -> float:
        """Seconds between the first and the latest gold answer."""
        return self.last_gold_at - self.first_gold_at

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
    votes: int = 0  # counted votes on their settled claims
    confirmed: int = 0  # ...that confirmed the claim
    refuted: int = 0  # settled claims not verified although a counted voter confirmed them


class Reason(StrEnum):
    """Why a vote counted, or why it did not: stored with each vote for the admin's audit."""

    ESTABLISHED = "established"  # counted, from a voter with full trust
    LEARNING = "learning"  # counted with part of the weight: trust still being earned
    MODERATOR = "moderator"  # an admin-marked moderator: the vote decides the claim
    NEW_ACCOUNT = "new_account"  # too little gold, or all of it answered within a short span
    LOW_RELIABILITY = "low_reliability"  # gold accuracy too low
    MODEL_ORACLE = "model_oracle"  # gold answers follow the served model where it is wrong
    STANDING = "standing"  # loses on settled claims far more often than gold predicts
    CLUSTER = "cluster"  # confirms this drawer far more often than the crowd does
    QUARANTINED = "quarantined"
    BANNED = "banned"

    @property
    def counts(self) -> bool:
        return self in (Reason.ESTABLISHED, Reason.LEARNING, Reason.MODERATOR)


@dataclass(frozen=True)
class Evidence:
    """What one vote says: P(answer | truth) for each of the 11 truths, whether it counts, and
    with what weight (0–1; 1 for an established voter)."""

    counts: bool
    reason: str  # a `Reason`: "established", or why not: "new_account", "model_oracle", ...
    likelihood: tuple[float, ...]
    weight: float = 0.0

    @property
    def established(self) -> bool:
        return self.counts and self.weight >= 1.0


# --- updates -------------------------------------------------------------------------------


def record_gold(
    voter: Voter, truth: int, answer: int, model_label: int | None = None, at: float = 0.0
) -> Voter:
    """Count one gold answer. `model_label` is what the served model reads on the gold item
    (None when unknown), `at` when the answer was given (seconds, any fixed origin)."""
    check_answer(truth)
    check_answer(answer)
    counts = list(voter.confusion)
    counts[truth * ANSWERS + answer] += 1
    hard = model_label is not None and model_label != truth
    return replace(
        voter,
        confusion=tuple(counts),
        first_gold_at=at if voter.gold_total == 0 else voter.first_gold_at,
        last_gold_at=max(at, voter.last_gold_at),
        hard_gold=voter.hard_gold + hard,
        hard_right=voter.hard_right + (hard and answer == truth),
        followed_model=voter.followed_model + (hard and answer == model_label),
        gold_streak=voter.gold_streak + 1 if answer == truth else 0,
    )


def record_settled_vote(
    voter: Voter,
    won: bool,
    lost_together: bool = False,
    confirmed: bool | None = None,
    crowd_rate: float = 0.5,
    refuted_confirm: bool = False,
) -> Voter:
    """Count one vote on a claim that settled. For a counted vote, `confirmed` says whether it
    confirmed the claim and `crowd_rate` is the crowd's confirmation rate on the drawer
    (`confirm_rate`): the difference feeds the voter's collusion-graph score. `refuted_confirm`:
    the vote confirmed a claim that was then not verified."""
    if won and lost_together:
        raise ValueError("a vote that won cannot have lost together with another")
    excess, variance = voter.confirm_excess, voter.confirm_variance
    if confirmed is not None:
        excess += confirmed - crowd_rate
        variance += crowd_rate * (1.0 - crowd_rate)
    return replace(
        voter,
        settled=voter.settled + 1,
        lost=voter.lost + (not won),
        lost_together=voter.lost_together + lost_together,
        confirm_excess=excess,
        confirm_variance=variance,
        refuted_confirms=voter.refuted_confirms + refuted_confirm,
    )


def record_pair_vote(pair: Pair, claimed: int, answer: int) -> Pair:
    check_digit(claimed)
    check_answer(answer)
    return replace(pair, votes=pair.votes + 1, agreed=pair.agreed + (answer == claimed))


def record_drawer_claim(
    drawer: Drawer, verified: bool, votes: int = 0, confirmed: int = 0
) -> Drawer:
    """Count one settled claim, with its counted votes and how many of them confirmed it."""
    return replace(
        drawer,
        settled=drawer.settled + 1,
        verified=drawer.verified + verified,
        votes=drawer.votes + votes,
        confirmed=drawer.confirmed + confirmed,
        refuted=drawer.refuted + (not verified and confirmed > 0),
    )


def set_status(voter: Voter, status: Status) -> Voter:
    return replace(voter, status=Status(status))


def set_moderator(voter: Voter, moderator: bool) -> Voter:
    return replace(voter, moderator=bool(moderator))


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


def confirm_rate(drawer: Drawer, s: RuleSettings) -> float:
    """How often the crowd's counted votes confirm this drawer's claims (prior: `drawer_prior`,
    worth `drawer_prior_verified + drawer_prior_rejected` votes)."""
    a, b = s.collusion.drawer_prior_verified, s.collusion.drawer_prior_rejected
    return (a + drawer.confirmed) / (a + b + drawer.votes)


def graph_clustered(voter: Voter, s: RuleSettings) -> bool:
    """Confirms the drawers they vote on far more often than the rest of the crowd does.

    An honest voter confirms true claims and rejects lies, as the crowd does, so over many
    drawers their excess stays near zero. A ring's account confirms every claim of its few
    drawers whatever the crowd says, and its excess grows with every such vote, on whichever of
    the ring's drawers: the accounts of a ring lose weight together, and the ring's drawers
    with them (their claims need more independent voters, see `consensus`). Sharper still: an
    honest voter almost never confirms a claim the crowd then rejects (that takes a mistake
    that happens to be the claimed digit); a ring's account does it whenever the crowd wins.
    """
    k = s.collusion
    if voter.settled < k.cluster_min_settled:
        return False
    if voter.refuted_confirms >= k.drawer_refuted_min and (
        _excess_z(voter.refuted_confirms, voter.settled, k.refuted_floor) > k.cluster_z
    ):
        return True  # keeps confirming claims the crowd then overrules
    if voter.confirm_variance <= 0.0:
        return False
    return voter.confirm_excess / math.sqrt(voter.confirm_variance) > k.cluster_z


def drawer_clustered(drawer: Drawer, s: RuleSettings) -> bool:
    """Claims of this drawer keep being confirmed by someone the crowd then overrules.

    A true claim is confirmed by everyone who counts, bar a rare mistake, and a lie rejected by
    everyone, unless accounts the drawer controls confirm it. A confirmed claim that the crowd
    rejects anyway is rare for an honest drawer and the mark of a small set of accounts
    confirming for this one, so their claims need `trust.cluster_extra_voters` more established
    confirmers, without a single counted dissent (or go to an admin when the vote cap comes).
    """
    k = s.collusion
    if drawer.refuted < k.drawer_refuted_min:
        return False
    return _excess_z(drawer.refuted, drawer.settled, k.refuted_floor) > k.cluster_z


def claim_extra_voters(drawer: Drawer, s: RuleSettings) -> int:
    """Established confirmers a new claim by `drawer` needs beyond `min_established_voters`."""
    return s.trust.cluster_extra_voters if drawer_clustered(drawer, s) else 0


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


def trust_weight(voter: Voter, s: RuleSettings) -> float:
    """How much of a full vote this voter's vote is worth, 0–1, before any suspicion.

    Trust grows only with evidence that costs time and real work: gold answered correctly (hard
    gold, which the served model gets wrong, counts twice) and votes that matched settled claims,
    spread over at least `established_span_seconds`. The weight is the smaller of the two
    fractions (work done, time spanned), so a farm of accounts that answers a burst of gold in
    a minute stays near zero however much it answers. Nobody reaches full weight (established)
    before the model-oracle test has run on `oracle_min_hard` hard gold answers. A moderator
    has full weight.
    """
    t = s.trust
    if voter.moderator:
        return 1.0
    work = (voter.gold_correct + voter.hard_right + voter.matched) / t.established_evidence
    span = voter.gold_span / t.established_span_seconds if t.established_span_seconds else 1.0
    weight = max(0.0, min(1.0, work, span))
    if voter.hard_gold < t.oracle_min_hard:
        weight = min(weight, _NOT_YET_TESTED)
    return weight


_NOT_YET_TESTED = 0.99  # the most weight before the model-oracle test has run


def established(voter: Voter, s: RuleSettings) -> bool:
    """Full trust: counts towards `trust.min_established_voters` on a claim. A model oracle is
    never established, however much work it did."""
    return trust_weight(voter, s) >= 1.0 and not model_oracle(voter, s)


def model_oracle(voter: Voter, s: RuleSettings) -> bool:
    """Answers gold the way the served model reads it, where the model is wrong.

    People misread some of the drawings the model misreads too, but rarely the same way most
    of the time; a bot that asks the game's own model does so every time.
    """
    t = s.trust
    return (
        voter.hard_gold >= max(t.oracle_min_hard, 1)
        and voter.followed_model >= t.oracle_follow_share * voter.hard_gold
    )


def role(voter: Voter, s: RuleSettings) -> Role:
    if voter.status is not Status.ACTIVE:
        return Role.OUT
    if voter.moderator:
        return Role.TRUSTED
    if voter.gold_total < s.gold.warmup_answers:
        return Role.WARMUP
    if accuracy(voter, s) < s.reliability.min_reliability or model_oracle(voter, s):
        return Role.GOLD_ONLY
    if standing_suspended(voter, s) or graph_clustered(voter, s):
        return Role.PROBATION
    if not established(voter, s):
        return Role.LEARNING
    return Role.TRUSTED


def not_counted_reason(voter: Voter, pair: Pair, drawer: Drawer, s: RuleSettings) -> Reason | None:
    """Why a vote by `voter` on a claim drawn by `drawer` would not count, or None if it would."""
    if voter.status is not Status.ACTIVE:
        return Reason(str(voter.status))
    if voter.moderator:
        return None
    if model_oracle(voter, s):
        return Reason.MODEL_ORACLE
    if voter.gold_total < s.gold.warmup_answers or trust_weight(voter, s) < s.trust.min_weight:
        return Reason.NEW_ACCOUNT
    if accuracy(voter, s) < s.reliability.min_reliability:
        return Reason.LOW_RELIABILITY
    if standing_suspended(voter, s):
        return Reason.STANDING
    if graph_clustered(voter, s) or pair_suspect(pair, drawer, s):
        return Reason.CLUSTER
    return None


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
    """The evidence one vote gives on a claim drawn by `drawer` (records taken before the vote).

    A counted vote's likelihood is tempered by the voter's trust weight (raised to that power),
    so a voter still earning trust moves the posterior less than an established one.
    """
    check_answer(answer)
    if pair.voter_id != voter.player_id or pair.drawer_id != drawer.player_id:
        raise ValueError("the pair record must be for this voter and this drawer")
    flat = (1.0 / ANSWERS,) * ANSWERS
    refused = not_counted_reason(voter, pair, drawer, s)
    if refused is not None:
        return Evidence(counts=False, reason=str(refused), likelihood=flat)
    weight = trust_weight(voter, s)
    row = likelihood(voter, answer, s)
    if voter.moderator:
        return Evidence(True, str(Reason.MODERATOR), row, 1.0)
    if weight >= 1.0:
        return Evidence(True, str(Reason.ESTABLISHED), row, 1.0)
    return Evidence(True, str(Reason.LEARNING), tuple(p**weight for p in row), weight)
