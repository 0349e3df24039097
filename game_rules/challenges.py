"""Challenges: prompts a round carries besides free play, and the bonus for meeting one.

A prompt is a rule about a claim: the digit drawn (`label`), and optionally the digit the model
must read it as (`model_label`; None: anything else). "Fool it with a 7" is {label 7}; "make your
3 read as an 8" is {label 3, model_label 8}. A prompt is met by a claim the crowd VERIFIED (not by
a submission), once per player per prompt; meeting it is worth its bonus as a score event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from game_rules.settings import RuleSettings


class PromptRefused(ValueError):
    """A prompt an admin cannot attach; the message says why. Nothing changed."""


@dataclass(frozen=True)
class Prompt:
    id: int
    round_id: int
    label: int  # the digit to draw
    model_label: int | None  # what the model must read instead; None: any other digit
    bonus: int

    @property
    def text(self) -> str:
        if self.model_label is None:
            return f"Fool it with {_a(self.label)}"
        return f"Make your {self.label} read as {_a(self.model_label)}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "model_label": self.model_label,
            "bonus": self.bonus,
            "text": self.text,
        }


def new_prompt(body: Any, existing: int, s: RuleSettings) -> tuple[int, int | None, int]:
    """(label, model_label, bonus) of an admin's `{"label", "model_label"?, "bonus"?}`, checked
    against the rules; `existing` is how many prompts the round has already."""
    c = s.challenges
    if not isinstance(body, dict) or set(body) - {"label", "model_label", "bonus"}:
        raise PromptRefused('Body: {"label": 0–9, "model_label": 0–9 or null, "bonus": points}.')
    label: Any = body.get("label")
    model_label: Any = body.get("model_label")
    bonus = body.get("bonus", c.bonus_points)
    if not _digit(label):
        raise PromptRefused("`label` is the digit to draw, 0–9.")
    if model_label is not None and (not _digit(model_label) or model_label == label):
        raise PromptRefused("`model_label` is another digit than `label`, or null for any.")
    if not (isinstance(bonus, int) and not isinstance(bonus, bool)) or not (
        1 <= bonus <= c.max_bonus_points
    ):
        raise PromptRefused(f"`bonus` is a whole number of points, 1–{c.max_bonus_points}.")
    if existing >= c.max_per_round:
        raise PromptRefused(f"A round carries at most {c.max_per_round} prompts.")
    return int(label), None if model_label is None else int(model_label), bonus


def met(prompts: Iterable[Prompt], claimed: int, model_label: int, done: set[int]) -> list[Prompt]:
    """The prompts a VERIFIED claim of `claimed` (the model read `model_label`) meets for the
    first time, given the ids of those its drawer has met already."""
    return [
        p
        for p in prompts
        if p.id not in done
        and p.label == claimed
        and model_label != claimed
        and (p.model_label is None or p.model_label == model_label)
    ]


def _a(digit: int) -> str:
    return f"an {digit}" if digit == 8 else f"a {digit}"


def _digit(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9
