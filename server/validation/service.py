"""Validation as a service: the wiring of its parts, for the game and the web routes.

The parts, each in its own module: `tasks` (blind tasks and votes), `gold` (seeding MNIST gold),
`pushes` (telling drawers how their claims settled, wherever they are connected, and again after
a pub/sub gap), `review` (admin decisions, moderation, player lookup), `export` (the votes
export) and `leaderboards`. What any of it decides is `game_rules`'s; the parts load, ask, store.
`Validation` builds them around one repository, broker and set of rules, and is what
`game.validation` is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from game_rules.reliability import Status
from server.config import DataLayout, default_rules, load_rules
from server.realtime.hub import Connection
from server.realtime.pubsub import Broker
from server.storage import Player, Repository
from server.validation.export import votes_export
from server.validation.gold import Predict, refresh_hard_gold, seed_mnist_gold
from server.validation.images import image_png
from server.validation.leaderboards import Leaderboards
from server.validation.pushes import Pushes
from server.validation.review import Review, ReviewError
from server.validation.tasks import Tasks

__all__ = ["ReviewError", "Validation", "image_png"]

log = logging.getLogger(__name__)


class Validation:
    """The parts, wired; each method hands its call to the part that does it."""

    def __init__(
        self,
        layout: DataLayout,
        repo: Repository,
        round_id: Callable[[], int | None],
        broker: Broker,
    ) -> None:
        self.layout = layout
        self.repo = repo
        self.settings = default_rules()
        self.boards = Leaderboards(repo, self.settings, round_id)
        self._round_id = round_id
        self.pushes = Pushes(repo, broker, lambda: self.settings)
        self.tasks = Tasks(repo, lambda: self.settings, round_id, self.pushes)
        self.admin = Review(repo, lambda: self.settings, lambda: self.boards, self.pushes)
        broker.subscribe("scores", lambda _: self.boards.changed())

    async def start(self) -> None:
        """Load the rules (raises `SettingsError`), seed MNIST gold, fold the score events."""
        self.settings = load_rules(self.layout)
        self.boards = Leaderboards(self.repo, self.settings, self._round_id)
        await seed_mnist_gold(self.layout, self.repo)
        await self.boards.start()
        log.info("rules loaded", extra={"source": self.settings.source})

    async def stop(self) -> None:
        await self.boards.stop()

    async def refresh_gold(self, predict: Predict) -> None:
        """Hard gold for the model `predict` serves (gold.py); call it whenever that changes.
        A failure is logged, not raised: easy gold keeps working without it."""
        try:
            await refresh_hard_gold(self.layout, self.repo, predict)
        except Exception:
            log.exception("hard gold refresh failed; validators get easy gold only for now")

    # Players' connections (pushes.py)

    def connect(self, player_id: int, connection: Connection) -> None:
        self.pushes.connect(player_id, connection)

    def disconnect(self, connection: Connection) -> None:
        self.boards.unsubscribe(connection)
        self.pushes.disconnect(connection)

    async def history(self, player_id: int) -> list[dict[str, Any]]:
        return await self.pushes.history(player_id)

    # Tasks and votes (tasks.py)

    async def task(self, player: Player) -> dict[str, Any] | None:
        return await self.tasks.task(player)

    async def vote(self, player: Player, task_id: str, raw_answer: object) -> dict[str, Any]:
        return await self.tasks.vote(player, task_id, raw_answer)

    async def progress(self, player_id: int) -> dict[str, Any]:
        return await self.tasks.progress(player_id)

    # Admin (review.py, export.py)

    async def decide(self, attempt_id: int, raw_label: object) -> dict[str, Any]:
        return await self.admin.decide(attempt_id, raw_label)

    async def moderate(self, player_id: int, status: Status) -> dict[str, Any]:
        return await self.admin.moderate(player_id, status)

    async def review(self) -> list[dict[str, Any]]:
        return await self.admin.review()

    async def set_moderator(self, player_id: int, moderator: bool) -> dict[str, Any]:
        return await self.admin.set_moderator(player_id, moderator)

    async def audit(self, attempt_id: int) -> dict[str, Any]:
        return await self.admin.audit(attempt_id)

    async def players(self, query: str) -> list[dict[str, Any]]:
        return await self.admin.players(query)

    async def votes_export(self) -> list[dict[str, Any]]:
        return await votes_export(self.layout, self.repo)
