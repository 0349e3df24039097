"""Ranking a board: unique positions, top N, and "you are #N of M" with your neighbours.

Positions are unique (no shared ranks), so "you are #7" always names one row. The order is:
higher score first; on equal scores, **earlier achievement wins** — the player who reached that
score first (the smaller `reached_at`, the seq of the event that brought them to it) ranks
higher, because they got there first and a later player has only caught up; if that is also
equal (two players scored by the same event), the smaller player id, so the order is total and
the same on every rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from game_rules.scoring import Tally


@dataclass(frozen=True)
class Row:
    rank: int
    player_id: int
    score: int


@dataclass(frozen=True)
class You:
    rank: int
    of: int
    score: int
    neighbours: tuple[Row, ...]  # the rows just above, you, and just below


@dataclass(frozen=True)
class Board:
    top: tuple[Row, ...]
    you: You | None
    size: int


def ranked(tallies: Mapping[int, Tally]) -> list[Row]:
    """Every player on the board in rank order (see the module docstring for ties)."""
    order = sorted(tallies.items(), key=lambda item: (-item[1].score, item[1].reached_at, item[0]))
    return [Row(i + 1, player_id, t.score) for i, (player_id, t) in enumerate(order)]


def board(
    tallies: Mapping[int, Tally],
    top_n: int,
    player_id: int | None = None,
    neighbours: int = 1,
) -> Board:
    """The top `top_n` rows, and, if `player_id` is on the board, their rank and neighbours."""
    if top_n < 0 or neighbours < 0:
        raise ValueError("top_n and neighbours must not be negative")
    rows = ranked(tallies)
    you = None
    if player_id is not None and player_id in tallies:
        index = next(i for i, r in enumerate(rows) if r.player_id == player_id)
        around = tuple(rows[max(0, index - neighbours) : index + neighbours + 1])
        you = You(rows[index].rank, len(rows), rows[index].score, around)
    return Board(tuple(rows[:top_n]), you, len(rows))
