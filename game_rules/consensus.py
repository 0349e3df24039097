"""Trust-weighted consensus on one claim: a posterior over the 11 answers, updated per vote.

The model (Dawid–Skene with known voter confusions, as in Zooniverse's SWAP): the drawing has
one true answer t among the digits 0–9 and "not a digit". Before any vote, the prior puts the
drawer's track record (`reliability.drawer_prior`) on the claimed digit, `model_prior` on the
model's answer and the rest evenly on the other nine. Each counted vote multiplies the
posterior by P(answer | t) for that voter — their gold-learned likelihood — and renormalises:
eleven multiplications per vote, stored as eleven plain floats. Votes are assumed independent
given t; collusion breaks that assumption, which is why `reliability` removes suspect votes and
why this module adds two guards of its own:

- a claim is verified only with at least `min_trusted_voters` distinct counted voters, and
  `dissent_extra_voters` more once any counted voter answered something other than the claim
  (one honest dissent among confirmations is exactly what a colluding ring looks like);
- it is verified or rejected only with at least `trust.min_established_voters` (K ≥ 2) distinct
  *established* voters on the winning side, `cluster_extra_voters` more for verifying when a
  confirmer is clustered on the drawer: new accounts alone never decide anything;
- a moderator's vote (an admin-marked trusted validator) decides the claim, as an admin would;
- a claim that is still unsure after `vote_cap` votes goes to an admin (disputed) rather than
  being decided on thin evidence.

Outcomes: verified (consensus = claim ≠ model), rejected_model_right (consensus = model),
rejected_not_digit, relabelled (consensus = a third digit; no points, the drawing keeps its
consensus label as data), disputed (admin review; `admin_decide` settles it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from game_rules.answers import ANSWERS, NOT_A_DIGIT, check_answer, check_digit
from game_rules.reliability import Evidence
from game_rules.settings import RuleSettings


class Outcome(StrEnum):
    VERIFIED = "verified"
    REJECTED_MODEL_RIGHT = "rejected_model_right"
    REJECTED_NOT_DIGIT = "rejected_not_digit"
    RELABELLED = "relabelled"
    DISPUTED = "disputed"


FINAL_OUTCOMES = frozenset(Outcome) - {Outcome.DISPUTED}
# Every outcome a stored submission can have: the model won, a claim still pending, or settled.
ATTEMPT_OUTCOMES = ("model_won", "pending", *Outcome)


class VoteRefused(ValueError):
    """A vote the rules refuse; `code` is the protocol's error code. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Vote:
    voter_id: int
    answer: int
    counted: bool
    likelihood: tuple[float, ...] = ()  # what the vote multiplied in (empty if not counted)
    reason: str = ""  # why it counted or not (`reliability.Reason`), for the admin's audit
    weight: float = 0.0  # the voter's trust weight when counted (1 = established)

    @property
    def established(self) -> bool:
        return self.counted and self.weight >= 1.0


@dataclass(frozen=True)
class Claim:
    """One claim's consensus state; every field is a plain value a database row can hold."""

    claim_id: int
    drawer_id: int
    claimed: int
    model_label: int
    prior: tuple[float, ...]
    posterior: tuple[float, ...]
    votes: tuple[Vote, ...] = ()
    outcome: Outcome | None = None  # None while pending
    label: int | None = None  # the consensus answer once settled (None if disputed)
    extra_voters: int = 0  # established confirmers needed beyond K (a clustered drawer's claim)

    @property
    def pending(self) -> bool:
        return self.outcome is None

    @property
    def settled(self) -> bool:
        return self.outcome in FINAL_OUTCOMES

    @property
    def counted_voters(self) -> int:
        return sum(v.counted for v in self.votes)

    @property
    def dissent(self) -> bool:
        return any(v.counted and v.answer != self.claimed for v in self.votes)

    @property
    def strength(self) -> float:
        """The posterior of the consensus label (how sure the crowd is); 0 while unsettled."""
        return self.posterior[self.label] if self.label is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for a database row."""
        data = asdict(self)
        data["outcome"] = None if self.outcome is None else str(self.outcome)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Claim:
        votes = tuple(
            Vote(
                int(v["voter_id"]),
                int(v["answer"]),
                bool(v["counted"]),
                tuple(v["likelihood"]),
                str(v.get("reason", "")),
                float(v.get("weight", 1.0 if v["counted"] else 0.0)),
            )
            for v in data["votes"]
        )
        outcome = data["outcome"]
        return cls(
            claim_id=int(data["claim_id"]),
            drawer_id=int(data["drawer_id"]),
            claimed=int(data["claimed"]),
            model_label=int(data["model_label"]),
            prior=tuple(float(p) for p in data["prior"]),
            posterior=tuple(float(p) for p in data["posterior"]),
            votes=votes,
            outcome=None if outcome is None else Outcome(outcome),
            label=None if data["label"] is None else int(data["label"]),
            extra_voters=int(data.get("extra_voters", 0)),
        )


def fooled(claimed: int, model_label: int) -> bool:
    """Did the model get a submission wrong? Then it is a claim, pending until the crowd (or an
    admin) settles it; otherwise the model won. The one place this is decided: the server's
    reply, the stored attempt and the storage row all ask here."""
    return claimed != model_label


def submission_outcome(claimed: int, model_label: int) -> str:
    """A stored submission's outcome: "pending" (a claim to settle) or "model_won"."""
    return "pending" if fooled(claimed, model_label) else "model_won"


def new_claim(
    claim_id: int,
    drawer_id: int,
    claimed: int,
    model_label: int,
    claim_prior: float,
    s: RuleSettings,
    extra_voters: int = 0,
) -> Claim:
    """A pending claim. `claim_prior` is `reliability.drawer_prior(drawer)`, `extra_voters`
    `reliability.claim_extra_voters(drawer)`."""
    check_digit(claimed)
    check_digit(model_label)
    if not fooled(claimed, model_label):
        raise ValueError("a claim needs the model to disagree with the claimed label")
    if not 0.0 < claim_prior < 1.0:
        raise ValueError(f"claim_prior must be strictly between 0 and 1, not {claim_prior}")
    m = s.consensus.model_prior
    rest = (1.0 - claim_prior) * (1.0 - m) / (ANSWERS - 2)
    prior = [rest] * ANSWERS
    prior[claimed] = claim_prior * (1.0 - m)
    prior[model_label] = m
    return Claim(
        claim_id,
        drawer_id,
        claimed,
        model_label,
        tuple(prior),
        tuple(prior),
        extra_voters=extra_voters,
    )


def record_vote(
    claim: Claim, voter_id: int, answer: int, evidence: Evidence, s: RuleSettings
) -> Claim:
    """The claim after one vote, settled or disputed if the vote decided it.

    Raises `VoteRefused` (changing nothing) for a settled claim, the drawer's own claim or a
    second vote by the same voter.
    """
    check_answer(answer)
    if not claim.pending:
        raise VoteRefused("task_settled", f"claim {claim.claim_id} is already {claim.outcome}")
    if voter_id == claim.drawer_id:
        raise VoteRefused("own_drawing", "nobody validates their own drawing")
    if any(v.voter_id == voter_id for v in claim.votes):
        raise VoteRefused("already_voted", "each player votes on a drawing at most once")
    if len(evidence.likelihood) != ANSWERS:
        raise ValueError("evidence must give a likelihood for each of the 11 answers")
    posterior = claim.posterior
    likelihood: tuple[float, ...] = ()
    if evidence.counts:
        likelihood = evidence.likelihood
        posterior = _times(posterior, likelihood)
    voted = replace(
        claim,
        posterior=posterior,
        votes=(
            *claim.votes,
            Vote(voter_id, answer, evidence.counts, likelihood, evidence.reason, evidence.weight),
        ),
    )
    if evidence.counts and evidence.reason == "moderator":
        return replace(voted, outcome=outcome_for(voted, answer), label=answer)
    return _decide(voted, s)


def void_votes(claim: Claim, voter_id: int, s: RuleSettings) -> Claim:
    """A pending claim without the voter's say (they were quarantined or banned).

    The vote stays on record (uncounted, so the voter still cannot vote twice) and the
    posterior is recomputed from the prior and the votes that still count.
    """
    if not claim.pending:
        return claim
    votes = tuple(
        Vote(v.voter_id, v.answer, False, (), "voided") if v.voter_id == voter_id else v
        for v in claim.votes
    )
    posterior = claim.prior
    for v in votes:
        if v.counted:
            posterior = _times(posterior, v.likelihood)
    return _decide(replace(claim, posterior=posterior, votes=votes), s)


def _times(posterior: tuple[float, ...], likelihood: tuple[float, ...]) -> tuple[float, ...]:
    raw = [p * q for p, q in zip(posterior, likelihood, strict=True)]
    total = sum(raw)
    return tuple(p / total for p in raw)


def established_backers(claim: Claim, answer: int) -> int:
    """Distinct established voters whose counted vote gave `answer`."""
    return len({v.voter_id for v in claim.votes if v.established and v.answer == answer})


def clustered(claim: Claim) -> bool:
    """A confirmer of this claim was refused as clustered on its drawer: the drawer's claims
    are confirmed by a small set of accounts, so the claim needs more independent voters."""
    return any(v.reason == "cluster" and v.answer == claim.claimed for v in claim.votes)


def established_needed(claim: Claim, s: RuleSettings) -> int:
    """Established confirmers a claim needs before the crowd may verify it."""
    t = s.trust
    return (
        t.min_established_voters
        + claim.extra_voters
        + (t.cluster_extra_voters if clustered(claim) else 0)
    )


def _decide(claim: Claim, s: RuleSettings) -> Claim:
    c = s.consensus
    counted = claim.counted_voters
    p_claim = claim.posterior[claim.claimed]
    needed = c.min_trusted_voters + (c.dissent_extra_voters if claim.dissent else 0)
    if (
        counted >= needed
        and p_claim >= c.verify_threshold
        and established_backers(claim, claim.claimed) >= established_needed(claim, s)
        and not contested(claim, s)
    ):
        return replace(claim, outcome=Outcome.VERIFIED, label=claim.claimed)
    best = max(range(ANSWERS), key=lambda a: claim.posterior[a])
    if (
        counted >= c.min_trusted_voters
        and p_claim <= c.reject_threshold
        and established_backers(claim, best) >= s.trust.min_established_voters
    ):
        return replace(claim, outcome=outcome_for(claim, best), label=best)
    split = claim.dissent and any(v.counted and v.answer == claim.claimed for v in claim.votes)
    if len(claim.votes) >= c.vote_cap or (claim.extra_voters and split):
        # Unsure after many votes, or a clustered drawer's claim the crowd splits on (the crowd
        # can no longer verify it, and its confirmers may keep it from being rejected).
        return replace(claim, outcome=Outcome.DISPUTED)
    return claim


def contested(claim: Claim, s: RuleSettings) -> bool:
    """Some other answer has `contest_voters` counted voters behind it: the crowd cannot verify.

    Two careful voters independently making the same mistake is rare; two accounts of a ring
    outvoted by honest voters who agree with each other is exactly what this looks like. Such a
    claim can still be rejected, but verifying it is left to an admin.
    """
    n = s.consensus.contest_voters
    if claim.extra_voters:
        n = 1  # a clustered drawer's claim is verified only without any counted dissent
    if n == 0:
        return False
    backing = [0] * ANSWERS
    for v in claim.votes:
        if v.counted and v.answer != claim.claimed:
            backing[v.answer] += 1
    return max(backing) >= n


def outcome_for(claim: Claim, label: int) -> Outcome:
    """What settling `claim` on answer `label` means for the drawer."""
    if label == claim.claimed:
        return Outcome.VERIFIED
    if label == claim.model_label:
        return Outcome.REJECTED_MODEL_RIGHT
    if label == NOT_A_DIGIT:
        return Outcome.REJECTED_NOT_DIGIT
    return Outcome.RELABELLED


def dispute(claim: Claim) -> Claim:
    """Send a pending claim to admin review (e.g. its drawer was quarantined or banned)."""
    if claim.settled:
        raise VoteRefused("task_settled", f"claim {claim.claim_id} is already {claim.outcome}")
    return replace(claim, outcome=Outcome.DISPUTED)


def admin_decide(claim: Claim, label: int) -> Claim:
    """An admin settles a pending or disputed claim on `label` (0–9, or 10 for not a digit)."""
    check_answer(label)
    if claim.settled:
        raise VoteRefused("task_settled", f"claim {claim.claim_id} is already {claim.outcome}")
    return replace(claim, outcome=outcome_for(claim, label), label=label)


@dataclass(frozen=True)
class Judgement:
    vote: Vote
    won: bool  # the answer matched the settled label
    lost_together: bool  # lost, and another counted voter gave the same losing answer


def judged_votes(claim: Claim) -> tuple[Judgement, ...]:
    """Each vote on a settled claim, judged against the settled label."""
    if not claim.settled or claim.label is None:
        raise ValueError(f"claim {claim.claim_id} is not settled")
    counted_answers = [v.answer for v in claim.votes if v.counted]
    judged = []
    for v in claim.votes:
        won = v.answer == claim.label
        company = counted_answers.count(v.answer) - (1 if v.counted else 0)
        judged.append(Judgement(v, won, not won and company > 0))
    return tuple(judged)


def usable_as_gold(claim: Claim, s: RuleSettings) -> bool:
    """Settled by the crowd with enough confidence to serve as a gold task."""
    return claim.settled and claim.strength >= s.gold.settled_gold_posterior
