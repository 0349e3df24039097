"""Scores as a fold over stored events, so every leaderboard can be rebuilt from the database.

The server stores events in order (each with an increasing `seq`) and keeps a `Scores` up to
date by applying each one as it commits; after a restart, or to check the live numbers,
`Scores.rebuild(events)` folds the same log from scratch and must give the same boards. Nothing
in here reads a clock or a database: the points an event is worth depend only on the event and
the settings (`awards`).

Events:
- `AttemptMade` — a submission (it counts as an attempt; if the model disagreed, as a fool).
- `ClaimSettled` — a claim's final outcome (by the crowd or an admin) with the votes that were
  cast; it pays the drawer and judges every counted vote. A disputed claim has no event until
  an admin decides it.
- `GoldAnswered` — a gold task answered, right or wrong.
- `ChallengeMet` — a verified claim met one of its round's prompts (game_rules/challenges.py)
  for the first time: the prompt's bonus, decided when it was met, to the drawer.

Boards: `round` (the points earned in one round: fooling in full, validation points up to
`scoring.validation_round_cap`, so a round is won by fooling), `all` (all time, every point)
and `validators` (validation points only, all time). Each entry remembers `reached_at`, the seq
of the event that brought the player to their current score: the leaderboard's tie-break
(earlier achievement wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from game_rules.answers import check_answer, check_digit
from game_rules.consensus import FINAL_OUTCOMES, Outcome
from game_rules.settings import RuleSettings


class EventRefused(ValueError):
    """An event that cannot be applied (out of order, replayed, malformed). Nothing changed."""


@dataclass(frozen=True)
class AttemptMade:
    seq: int
    round_id: int
    player_id: int
    label: int
    model_label: int


@dataclass(frozen=True)
class ClaimSettled:
    seq: int
    round_id: int
    claim_id: int
    drawer_id: int
    outcome: Outcome
    label: int  # the settled answer (10 = not a digit)
    model_confidence: float  # the model's probability for its own (wrong, if verified) answer
    votes: tuple[tuple[int, int, bool], ...] = ()  # (voter_id, answer, counted)
    by_admin: bool = False


@dataclass(frozen=True)
class GoldAnswered:
    seq: int
    round_id: int
    player_id: int
    truth: int
    answer: int


@dataclass(frozen=True)
class ChallengeMet:
    seq: int
    round_id: int
    player_id: int
    challenge_id: int
    claim_id: int
    points: int


Event = AttemptMade | ClaimSettled | GoldAnswered | ChallengeMet


@dataclass(frozen=True)
class Award:
    player_id: int
    points: int
    validation: bool  # counts on the validators' board too


@dataclass
class Tally:
    score: int = 0
    reached_at: int = 0


@dataclass
class Stats:
    attempts: int = 0
    fools: int = 0  # attempts the model got wrong (claims made)
    verified: int = 0
    rejected: int = 0
    relabelled: int = 0
    votes_judged: int = 0
    votes_matched: int = 0
    gold_answered: int = 0
    gold_correct: int = 0

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


def fool_points(model_confidence: float, s: RuleSettings) -> int:
    """A verified fool: more points the more confident the model was in its wrong answer."""
    return s.scoring.fool_base_points + round(s.scoring.fool_confidence_points * model_confidence)


def awards(event: Event, s: RuleSettings) -> tuple[Award, ...]:
    """The points one event is worth, per player."""
    sc = s.scoring
    if isinstance(event, AttemptMade):
        return ()
    if isinstance(event, ChallengeMet):
        return (Award(event.player_id, event.points, validation=False),)
    if isinstance(event, GoldAnswered):
        right = event.answer == event.truth
        points = sc.gold_correct_points if right else -sc.gold_miss_penalty
        return (Award(event.player_id, points, validation=True),)
    drawer_points = {
        Outcome.VERIFIED: fool_points(event.model_confidence, s),
        Outcome.REJECTED_MODEL_RIGHT: -sc.rejected_penalty,
        Outcome.REJECTED_NOT_DIGIT: -sc.rejected_penalty,
        Outcome.RELABELLED: -sc.relabelled_penalty,
    }[event.outcome]
    result = [Award(event.drawer_id, drawer_points, validation=False)]
    for voter_id, answer, counted in event.votes:
        if counted:
            matched = answer == event.label
            points = sc.validator_match_points if matched else -sc.validator_miss_penalty
            result.append(Award(voter_id, points, validation=True))
    return tuple(result)


def drawer_points(event: ClaimSettled, s: RuleSettings) -> int:
    """What a settled claim earned its drawer (the number in their `claim_settled` message)."""
    return sum(
        a.points for a in awards(event, s) if a.player_id == event.drawer_id and not a.validation
    )


def gold_points(event: GoldAnswered, s: RuleSettings) -> int:
    """What a gold answer earned its validator (the number in their `voted` reply)."""
    return sum(a.points for a in awards(event, s))


def check_event(event: Event) -> None:
    """Refuse a malformed event with a clear message."""
    if not isinstance(event, AttemptMade | ClaimSettled | GoldAnswered | ChallengeMet):
        raise EventRefused(f"not a scoring event: {event!r}")
    if not isinstance(event.seq, int) or event.seq < 1:
        raise EventRefused(f"an event's seq must be a positive int, not {event.seq!r}")
    try:
        if isinstance(event, AttemptMade):
            check_digit(event.label)
            check_digit(event.model_label)
        elif isinstance(event, GoldAnswered):
            check_answer(event.truth)
            check_answer(event.answer)
        elif isinstance(event, ChallengeMet):
            if not isinstance(event.points, int) or event.points < 0:
                raise EventRefused(f"a challenge's bonus is points ≥ 0, not {event.points!r}")
        else:
            if event.outcome not in FINAL_OUTCOMES:
                raise EventRefused(
                    f"claim {event.claim_id}: {event.outcome!r} is not a final outcome"
                )
            check_answer(event.label)
            if not 0.0 <= event.model_confidence <= 1.0:
                raise EventRefused("model_confidence must be a probability in [0, 1]")
            voters = [v for v, _, _ in event.votes]
            if len(set(voters)) != len(voters) or event.drawer_id in voters:
                raise EventRefused(f"claim {event.claim_id}: a voter appears twice or drew it")
            for _, answer, _ in event.votes:
                check_answer(answer)
    except ValueError as exc:
        if isinstance(exc, EventRefused):
            raise
        raise EventRefused(str(exc)) from exc


@dataclass
class Scores:
    """Every board and every player's stats after the events applied so far."""

    last_seq: int = 0
    rounds: dict[int, dict[int, Tally]] = field(default_factory=dict)
    all_time: dict[int, Tally] = field(default_factory=dict)
    validators: dict[int, Tally] = field(default_factory=dict)
    stats: dict[int, Stats] = field(default_factory=dict)
    # round → player → net validation points earned in that round (the round board counts at
    # most `scoring.validation_round_cap` of them)
    round_validation: dict[int, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def rebuild(cls, events: Iterable[Event], s: RuleSettings) -> Scores:
        scores = cls()
        for event in events:
            scores.apply(event, s)
        return scores

    def apply(self, event: Event, s: RuleSettings) -> tuple[Award, ...]:
        """Fold one event in; returns its awards. Raises `EventRefused`, changing nothing."""
        check_event(event)
        if event.seq <= self.last_seq:
            raise EventRefused(
                f"event seq {event.seq} is not after {self.last_seq}: replayed or out of order"
            )
        given = awards(event, s)
        self.last_seq = event.seq
        board = self.rounds.setdefault(event.round_id, {})
        for award in given:
            _add(board, self._on_round_board(event.round_id, award, s), event.seq)
            _add(self.all_time, award, event.seq)
            if award.validation:
                _add(self.validators, award, event.seq)
        self._count(event)
        return given

    def _on_round_board(self, round_id: int, award: Award, s: RuleSettings) -> Award:
        """What an award adds to its round's board: fooling in full, validation up to the cap
        (misses still cost while under it)."""
        if not award.validation:
            return award
        earned = self.round_validation.setdefault(round_id, {})
        before = earned.get(award.player_id, 0)
        earned[award.player_id] = after = before + award.points
        cap = s.scoring.validation_round_cap
        return replace(award, points=min(after, cap) - min(before, cap))

    def _count(self, event: Event) -> None:
        if isinstance(event, ChallengeMet):
            return
        if isinstance(event, AttemptMade):
            st = self.stats.setdefault(event.player_id, Stats())
            st.attempts += 1
            st.fools += event.label != event.model_label
        elif isinstance(event, GoldAnswered):
            st = self.stats.setdefault(event.player_id, Stats())
            st.gold_answered += 1
            st.gold_correct += event.answer == event.truth
        else:
            st = self.stats.setdefault(event.drawer_id, Stats())
            if event.outcome == Outcome.VERIFIED:
                st.verified += 1
            elif event.outcome == Outcome.RELABELLED:
                st.relabelled += 1
            else:
                st.rejected += 1
            for voter_id, answer, counted in event.votes:
                if counted:
                    vs = self.stats.setdefault(voter_id, Stats())
                    vs.votes_judged += 1
                    vs.votes_matched += answer == event.label

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (string keys), for a snapshot row."""

        def tallies(d: dict[int, Tally]) -> dict[str, list[int]]:
            return {str(p): [t.score, t.reached_at] for p, t in d.items()}

        return {
            "last_seq": self.last_seq,
            "rounds": {str(r): tallies(b) for r, b in self.rounds.items()},
            "all_time": tallies(self.all_time),
            "validators": tallies(self.validators),
            "stats": {str(p): vars(st).copy() for p, st in self.stats.items()},
            "round_validation": {
                str(r): {str(p): n for p, n in earned.items()}
                for r, earned in self.round_validation.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        def tallies(d: dict[str, list[int]]) -> dict[int, Tally]:
            return {int(p): Tally(score, at) for p, (score, at) in d.items()}

        return cls(
            last_seq=int(data["last_seq"]),
            rounds={int(r): tallies(b) for r, b in data["rounds"].items()},
            all_time=tallies(data["all_time"]),
            validators=tallies(data["validators"]),
            stats={int(p): Stats(**st) for p, st in data["stats"].items()},
            round_validation={
                int(r): {int(p): n for p, n in earned.items()}
                for r, earned in data.get("round_validation", {}).items()
            },
        )


def _add(board: dict[int, Tally], award: Award, seq: int) -> None:
    tally = board.setdefault(award.player_id, Tally(0, seq))
    if award.points:
        tally.score += award.points
        tally.reached_at = seq
