"""What the game stores, as an interface: SQLite and PostgreSQL implement it (server/storage/).

Every method that writes is one transaction: it either happens completely or not at all. What
storage raises lives in errors.py (re-exported here), so the SQL modules need not import this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from game_rules.consensus import fooled, submission_outcome
from game_rules.rounds import RoundState
from server.storage.consensus import ConsensusStore
from server.storage.errors import (
    Conflict,
    NameTaken,
    RoundChanged,
    RoundNotOpen,
    StorageError,
)
from server.storage.sql import T

__all__ = [
    "Conflict",
    "GameCounts",
    "NameTaken",
    "NewAttempt",
    "Player",
    "Repository",
    "Round",
    "RoundChanged",
    "RoundNotOpen",
    "StorageError",
]


@dataclass(frozen=True)
class Player:
    id: int
    name: str


@dataclass(frozen=True)
class Round:
    id: int
    number: int
    state: RoundState
    model_version: str
    fools: int = 0
    attempts: int = 0

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "number": self.number,
            "state": str(self.state),
            "model_version": self.model_version,
            "fools": self.fools,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class NewAttempt:
    player_id: int
    round_id: int
    strokes_json: str | None
    png: bytes | None
    image: bytes  # the 28×28 float32 input the model saw, little-endian, row-major
    label: int
    predicted: int
    probs: list[float]
    model_version: str
    # The client's `id` for the submission and a digest of what it asked (drawing and label): the
    # same request again within REPLAY_SECONDS is not stored twice (see `submitter`).
    request: str | None = None
    fingerprint: str = ""

    @property
    def fooled(self) -> bool:
        """A mismatch is only a claim until other players confirm it."""
        return fooled(self.label, self.predicted)

    @property
    def outcome(self) -> str:
        """As stored: "pending" (a claim to settle) or "model_won"."""
        return submission_outcome(self.label, self.predicted)


@dataclass(frozen=True)
class GameCounts:
    """Counts of the shared game, for /metrics (server/web/game_metrics.py)."""

    claims: dict[str, int]  # by state: pending, verified, rejected_model_right, ...
    votes: int
    jobs: dict[str, int]  # training jobs by state (server/learning/jobs/queue.py)
    progress: str | None  # the running training job's progress, JSON


REPLAY_SECONDS = 24 * 3600  # how long a submission's request id is remembered


@dataclass(frozen=True)
class StoredSubmission:
    """What a submission's acknowledgement says, as stored."""

    attempt_id: int
    label: int
    predicted: int
    probs: list[float]
    model_version: str


@dataclass(frozen=True)
class Submitter:
    banned: bool
    stored: StoredSubmission | None  # the original, if the submission is a resend


class Repository(ABC):
    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise if storage cannot answer a trivial query."""

    @abstractmethod
    async def counts(self) -> GameCounts:
        """A few counts over the whole game (cheap: grouped counts on indexed columns)."""

    # Consensus (tasks, votes, gold, reliability records, score events): server/storage/consensus.py
    @abstractmethod
    async def write_consensus(self, work: Callable[[ConsensusStore], Awaitable[T]]) -> T:
        """`work` as one write transaction over the consensus tables: all of it commits, or
        none (if it raises). `work` awaits nothing but the store's statements: on SQLite it runs
        whole on the database's thread, one trip however many statements it makes."""

    @abstractmethod
    def consensus_reads(self) -> ConsensusStore:
        """Read-only consensus queries on the last committed state (never waits for writes)."""

    # Players
    @abstractmethod
    async def create_player(self, name: str, name_key: str, token_hash: str) -> Player:
        """Raise `NameTaken` if `name_key` is used."""

    @abstractmethod
    async def player_by_token_hash(self, token_hash: str) -> Player | None: ...

    @abstractmethod
    async def rekey_players(self, name_key: Callable[[str], str]) -> int:
        """Recompute every player's name key with `name_key` (when the rule for keys changed);
        return how many changed. Players whose names now collide keep their names, and the
        later ones a key no new name can have."""

    # Rounds
    @abstractmethod
    async def rounds(self) -> list[Round]:
        """Every round, newest first, with counts."""

    @abstractmethod
    async def round(self, round_id: int) -> Round | None: ...

    @abstractmethod
    async def current_round(self) -> Round | None:
        """The open round, else the newest; None before the first."""

    @abstractmethod
    async def open_first_round(self, model_version: str) -> Round | None:
        """Open round 1 if there is no round at all (one transaction, so two server processes
        starting together open one round); None if a round exists."""

    @abstractmethod
    async def create_round(self, model_version: str, open_now: bool = False) -> Round:
        """A new round numbered after the last one: scheduled, or open (closing the open one)."""

    @abstractmethod
    async def move_round(self, round_id: int, expected: RoundState, target: RoundState) -> Round:
        """Change one round's state if it is still `expected`, else raise `RoundChanged`.
        Opening a round moves any other open round to closing, in the same transaction."""

    # Attempts
    @abstractmethod
    async def add_attempt(self, attempt: NewAttempt) -> int:
        """Store a submission (and its pending claim when the model was fooled); return its id.
        Raise `RoundNotOpen` if the round no longer accepts submissions. A submission whose
        `request` and `fingerprint` were stored for the player within REPLAY_SECONDS is a resend:
        nothing is stored and the original's id is returned."""

    @abstractmethod
    async def submitter(self, player_id: int, request: str | None, fingerprint: str) -> Submitter:
        """What a submission needs to know of its player before it is guessed, in one read:
        whether they are banned, and the submission stored for this request of theirs within
        REPLAY_SECONDS (a resend), if any."""

    @abstractmethod
    async def answer_given(self, player_id: int, task_id: str) -> int | None:
        """The player's stored answer to a validation task (0–9, 10 for "not a digit"), if any:
        a vote sent again is recognised by it."""
