"""One vote, one settlement, one gold answer: what each means for every record, decided once.

A vote on a claim touches the claim (its posterior, maybe its outcome) and the voter's record on
that drawer; a settled claim then judges every vote, counts towards its drawer's history, makes
a score event and perhaps a gold task; a gold answer updates the voter's confusion counts and
makes a score event. These functions take the records as they are and return them as they
become. Both callers follow the same steps: the server (server/validation/tasks.py) loads the
records from storage, calls these and stores what they return in one transaction; the crowd
simulation (`simulation`) keeps the records in dicts and calls the very same functions, so the
benchmark measures the game's own sequence rather than a copy of it.

A claim that a vote settles (or disputes) is settled in a second call, `settle`, because only
then are the other voters' records needed: the server loads them just for that. A vote whose
claim was decided while the voter thought (`late_vote`) is judged against the outcome instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from game_rules.answers import check_answer
from game_rules.consensus import (
    Claim,
    Outcome,
    Vote,
    VoteRefused,
    judged_votes,
    record_vote,
    usable_as_gold,
)
from game_rules.reliability import (
    Drawer,
    Pair,
    Voter,
    assess_vote,
    claim_extra_voters,
    confirm_rate,
    record_drawer_claim,
    record_gold,
    record_pair_vote,
    record_settled_vote,
)
from game_rules.scoring import ClaimSettled, GoldAnswered, drawer_points, gold_points
from game_rules.settings import RuleSettings


@dataclass(frozen=True)
class VoteCast:
    """What one vote on a pending claim changes."""

    claim: Claim  # after the vote: still pending, or settled, or disputed (then `settle` it)
    pair: Pair  # the voter's record on this drawer, this vote included
    counted: bool  # whether the vote moved the posterior (stored with the vote)
    reason: str  # why it counted or not (`reliability.Reason`)


def cast_vote(
    claim: Claim, voter: Voter, pair: Pair, drawer: Drawer, answer: int, s: RuleSettings
) -> VoteCast:
    """One vote by `voter` on `claim` (drawn by `drawer`), records taken before the vote.

    Raises `consensus.VoteRefused` (nothing changed) for a settled claim, the drawer's own
    claim or a second vote by the same voter.
    """
    evidence = assess_vote(voter, pair, drawer, answer, s)
    # The drawer's record as it is now: a drawer found clustered since the claim was made
    # needs more independent confirmers on it too.
    extra = max(claim.extra_voters, claim_extra_voters(drawer, s))
    voted = record_vote(replace(claim, extra_voters=extra), voter.player_id, answer, evidence, s)
    return VoteCast(
        voted, record_pair_vote(pair, claim.claimed, answer), evidence.counts, evidence.reason
    )


@dataclass(frozen=True)
class LateVote:
    """What a vote that arrives after its claim left `pending` changes (its task was handed out
    while the claim was open). It never moves the claim; on a settled claim it is judged at
    once, as `settle` judges an uncounted vote, so it still counts for the voter's standing; on
    a disputed claim it joins the votes, uncounted, and is judged when an admin decides."""

    claim: Claim  # unchanged if settled; with the uncounted vote if disputed
    voter: Voter
    pair: Pair


def late_vote(claim: Claim, voter: Voter, pair: Pair, answer: int) -> LateVote:
    """`voter`'s `answer` on `claim`, which was decided after their task was handed out.

    Raises `consensus.VoteRefused` for a pending claim (cast it), the drawer's own claim or a
    second vote by the same voter."""
    check_answer(answer)
    if claim.pending:
        raise VoteRefused("task_pending", f"claim {claim.claim_id} is still pending: cast the vote")
    if voter.player_id == claim.drawer_id:
        raise VoteRefused("own_drawing", "nobody validates their own drawing")
    if any(v.voter_id == voter.player_id for v in claim.votes):
        raise VoteRefused("already_voted", "each player votes on a drawing at most once")
    pair = record_pair_vote(pair, claim.claimed, answer)
    if claim.settled:
        won = answer == claim.label
        return LateVote(claim, record_settled_vote(voter, won), pair)
    vote = Vote(voter.player_id, answer, counted=False, reason="late")
    return LateVote(replace(claim, votes=(*claim.votes, vote)), voter, pair)


@dataclass(frozen=True)
class Settlement:
    """What a claim leaving `pending` changes. A disputed claim changes nothing but its state:
    no records, no event, no points, until an admin decides it (and it is settled again)."""

    claim: Claim
    voters: tuple[Voter, ...] = ()  # every voter's record, this claim's verdict on them counted
    drawer: Drawer | None = None  # the drawer's record, this claim counted
    event: ClaimSettled | None = None  # for the score log; its `seq` is the store's to assign
    gold_label: int | None = None  # keep the drawing as a gold task with this answer
    points: int = 0  # what the drawer earned (their `claim_settled` message says so)


def settle(
    claim: Claim,
    voters: Mapping[int, Voter],
    drawer: Drawer,
    round_id: int,
    model_confidence: float,
    s: RuleSettings,
    by_admin: bool = False,
) -> Settlement:
    """What settling (or disputing) `claim` means; `voters` holds the record of everyone who
    voted on it, `drawer` the drawer's, `model_confidence` the model's probability for its own
    answer (fool points grow with it)."""
    if claim.outcome is Outcome.DISPUTED:
        return Settlement(claim)
    judged = judged_votes(claim)  # ValueError for a claim that is still pending
    assert claim.outcome is not None and claim.label is not None
    rate = confirm_rate(drawer, s)
    counted = [j.vote for j in judged if j.vote.counted]
    confirmations = sum(v.answer == claim.claimed for v in counted)
    event = ClaimSettled(
        seq=1,
        round_id=round_id,
        claim_id=claim.claim_id,
        drawer_id=claim.drawer_id,
        outcome=claim.outcome,
        label=claim.label,
        model_confidence=model_confidence,
        votes=tuple((v.voter_id, v.answer, v.counted) for v in claim.votes),
        by_admin=by_admin,
    )
    return Settlement(
        claim=claim,
        voters=tuple(
            record_settled_vote(
                voters[j.vote.voter_id],
                j.won,
                j.lost_together,
                (j.vote.answer == claim.claimed) if j.vote.counted else None,
                rate,
                j.vote.answer == claim.claimed and claim.outcome is not Outcome.VERIFIED,
            )
            for j in judged
        ),
        drawer=record_drawer_claim(
            drawer, claim.outcome is Outcome.VERIFIED, len(counted), confirmations
        ),
        event=event,
        gold_label=claim.label if usable_as_gold(claim, s) else None,
        points=drawer_points(event, s),
    )


@dataclass(frozen=True)
class Warmup:
    """Progress through warm-up: gold answered of the `needed` before a validator gets claims."""

    answered: int
    needed: int

    def to_dict(self) -> dict[str, int]:
        return {"answered": self.answered, "needed": self.needed}


def warmup(voter: Voter, s: RuleSettings) -> Warmup | None:
    """`voter`'s warm-up progress, or None once it is over (a moderator skips it)."""
    needed = s.gold.warmup_answers
    if voter.moderator or voter.gold_total >= needed:
        return None
    return Warmup(voter.gold_total, needed)


@dataclass(frozen=True)
class GoldAnswer:
    """What answering a gold task changes, and what the validator hears of it."""

    voter: Voter  # the voter's record, this answer counted in their confusion table and streak
    event: GoldAnswered  # for the score log; its `seq` is the store's to assign
    right: bool
    points: int  # what the answer earned (negative for a miss)
    # For an answer given in warm-up, the progress after it: the answer that ends warm-up
    # reports it complete (answered == needed), so the meter can say so.
    warmup: Warmup | None


def answer_gold(
    voter: Voter,
    truth: int,
    answer: int,
    round_id: int,
    s: RuleSettings,
    model_label: int | None = None,
    at: float = 0.0,
) -> GoldAnswer:
    """`voter` answered a gold task whose known answer is `truth` at time `at` (seconds);
    `model_label` is what the served model reads on it (None if unknown): where the model is
    wrong, following it marks a model oracle."""
    after = record_gold(voter, truth, answer, model_label, at)
    event = GoldAnswered(1, round_id, voter.player_id, truth, answer)
    was_warmup = warmup(voter, s)
    return GoldAnswer(
        after,
        event,
        right=answer == truth,
        points=gold_points(event, s),
        warmup=None if was_warmup is None else Warmup(after.gold_total, was_warmup.needed),
    )
