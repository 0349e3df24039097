"""Leaderboard pushes are coalesced: however many score changes land within one push interval,
a subscriber gets one push, carrying the latest snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

from game_rules.scoring import GoldAnswered
from game_rules.settings import with_changes
from server.config import default_rules
from server.storage import open_repository
from server.validation.leaderboards import Leaderboards


class Recorder:
    """Stands in for a connection: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


async def wait_for(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never came true")


async def test_many_changes_make_one_push_with_the_latest_scores(database_url: str) -> None:
    repo = await open_repository(database_url)
    # A long interval: a second push within the test would mean pushes are not coalesced.
    settings = with_changes(default_rules(), leaderboard={"push_interval_seconds": 3600.0})
    player = await repo.create_player("Grace", "grace", "hash")
    round_ = await repo.create_round("v1", open_now=True)
    boards = Leaderboards(repo, settings, lambda: round_.id)
    await boards.start()
    recorder = Recorder()
    boards.subscribe(recorder, "validators", player.id)  # type: ignore[arg-type]
    try:

        async def gold_answer() -> None:
            async with repo.consensus() as store:
                await store.append_event(GoldAnswered(1, round_.id, player.id, truth=3, answer=3))
            boards.changed()

        await gold_answer()
        await wait_for(lambda: recorder.sent)
        for _ in range(20):
            await gold_answer()
        await asyncio.sleep(0.3)
        assert len(recorder.sent) == 1  # the other 20 changes wait for the next interval
        assert recorder.sent[0]["you"]["score"] == settings.scoring.gold_correct_points

        await boards.refresh()
        latest = boards.snapshot("validators", player.id)
        assert latest["you"]["score"] == 21 * settings.scoring.gold_correct_points
    finally:
        await boards.stop()
        await repo.close()
