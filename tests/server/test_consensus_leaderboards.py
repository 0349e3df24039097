"""Leaderboard pushes are coalesced: however many score changes land within one push interval,
a subscriber gets one push, carrying the latest snapshot."""

from __future__ import annotations

import time
from typing import Any

from waiting import wait_until_async

from game_rules.scoring import GoldAnswered
from game_rules.settings import with_changes
from server.config import default_rules
from server.storage import open_repository
from server.validation.leaderboards import Leaderboards

INTERVAL = 2.0  # seconds between two pushes, at the least (20 changes fit well within)


class Recorder:
    """Stands in for a connection: keeps what would have been sent, and when."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.at: list[float] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.at.append(time.monotonic())


async def test_many_changes_make_one_push_with_the_latest_scores(database_url: str) -> None:
    repo = await open_repository(database_url)
    settings = with_changes(default_rules(), leaderboard={"push_interval_seconds": INTERVAL})
    player = await repo.create_player("Grace", "grace", "hash")
    round_ = await repo.create_round("v1", open_now=True)
    boards = Leaderboards(repo, settings, lambda: round_.id)
    await boards.start()
    recorder = Recorder()
    boards.subscribe(recorder, "validators", player.id)  # type: ignore[arg-type]
    try:

        async def gold_answer() -> None:
            event = GoldAnswered(1, round_.id, player.id, truth=3, answer=3)
            await repo.write_consensus(lambda store: store.append_event(event))
            boards.changed()

        points = settings.scoring.gold_correct_points
        await gold_answer()
        await wait_until_async(lambda: recorder.sent, 10, "no first push")
        for _ in range(20):
            await gold_answer()
        # The other 20 changes wait for the next interval, and then make one push.
        await wait_until_async(lambda: len(recorder.sent) >= 2, 10 + INTERVAL, "no second push")
        assert [push["you"]["score"] for push in recorder.sent] == [points, 21 * points]
        assert recorder.at[1] - recorder.at[0] >= INTERVAL * 0.99
    finally:
        await boards.stop()
        await repo.close()
