"""The eleven answers a validator can give: the digits 0–9 and "not a digit".

Inside the rules an answer is a plain int, with 10 standing for "not a digit" (the protocol's
`"x"`), so a posterior or a confusion row is simply a tuple indexed by answer.
"""

from __future__ import annotations

NOT_A_DIGIT = 10
ANSWERS = 11
DIGITS = range(10)


class BadAnswer(ValueError):
    code = "bad_label"


def parse_answer(raw: object) -> int:
    """The protocol's answer (0–9 or "x") as an int answer; anything else raises `BadAnswer`."""
    if raw == "x":
        return NOT_A_DIGIT
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 9:
        return raw
    raise BadAnswer(f'an answer must be a digit 0–9 or "x" (not a digit), not {raw!r}')


def format_answer(answer: int) -> int | str:
    check_answer(answer)
    return "x" if answer == NOT_A_DIGIT else answer


def check_answer(answer: int) -> int:
    if not (isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < ANSWERS):
        raise BadAnswer(f"an answer must be an int 0–10 (10 = not a digit), not {answer!r}")
    return answer


def check_digit(label: int) -> int:
    if not (isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9):
        raise BadAnswer(f"a label must be a digit 0–9, not {label!r}")
    return label
