"""The round state machine.

A round is one frozen model version that everyone tries to fool. It moves
scheduled → open → closing → closed and never backwards: once a round has closed, its data and
scores are final, so reopening it would change history. `closing` exists so that claims made
while the round was open can still settle after new submissions stop.
"""

from __future__ import annotations

from enum import StrEnum


class RoundState(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_LEGAL: dict[RoundState, frozenset[RoundState]] = {
    RoundState.SCHEDULED: frozenset({RoundState.OPEN, RoundState.CLOSED}),
    RoundState.OPEN: frozenset({RoundState.CLOSING, RoundState.CLOSED}),
    RoundState.CLOSING: frozenset({RoundState.CLOSED}),
    RoundState.CLOSED: frozenset(),
}


class IllegalTransition(ValueError):
    """Raised for a transition the state machine does not allow."""


def can_transition(current: RoundState, target: RoundState) -> bool:
    return target in _LEGAL[current]


def transition(current: RoundState, target: RoundState) -> RoundState:
    """Return `target` if the move is legal, else raise `IllegalTransition` saying what is."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(_LEGAL[current])) or "nothing (it is final)"
        raise IllegalTransition(
            f"a round that is {current} cannot become {target}; "
            f"from {current} it can become {allowed}"
        )
    return target


def accepts_submissions(state: RoundState) -> bool:
    return state is RoundState.OPEN


def settles_claims(state: RoundState) -> bool:
    """Claims keep settling while the round is open or closing."""
    return state in (RoundState.OPEN, RoundState.CLOSING)


def should_retrain(newly_verified: int, threshold: int) -> bool:
    """The automatic policy: retrain once `threshold` examples were verified since the last model.

    Pass `settings.retrain.new_verified_threshold`; whether the next round then opens by itself
    is `settings.retrain.auto_open_next_round`.
    """
    if newly_verified < 0:
        raise ValueError(f"newly_verified cannot be negative, not {newly_verified}")
    return newly_verified >= threshold


def closes_to(current: RoundState) -> RoundState:
    """Where "close this round" (without saying how far) takes a round: an open round to
    closing, so the claims made while it was open still settle; any other to closed. Whether
    that move is legal is `transition`'s to say."""
    return RoundState.CLOSING if current is RoundState.OPEN else RoundState.CLOSED
