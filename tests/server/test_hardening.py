"""No input can hurt another player (issue 12): one player's drawings, frames or connections never
cost another player a reply."""

from __future__ import annotations

import asyncio
from typing import Any

from live_server import ONE, SEVEN, ThreadServer, join

POISON = {"strokes": [[[0, 0], [5e-324, 0]]]}  # a denormal wide: once broke its whole batch


async def well_behaved(url: str, name: str, guesses: int) -> list[dict[str, Any]]:
    """A player who guesses `guesses` times at the browser's pace (~10 Hz, waiting for each
    answer), then submits once: the errors they got."""
    client, _ = await join(url, name)
    errors = []
    for n in range(guesses):
        reply = await client.request(
            {"type": "predict", "id": f"g{n}", "drawing": SEVEN}, "prediction"
        )
        if reply["type"] == "error":
            errors.append(reply)
        await asyncio.sleep(0.1)
    submitted = await client.request(
        {"type": "submit", "id": "s", "drawing": ONE, "label": 1}, "submitted"
    )
    if submitted["type"] == "error":
        errors.append(submitted)
    await client.close()
    return errors


async def test_a_poisoned_drawing_costs_other_players_nothing(server: ThreadServer) -> None:
    attacker, _ = await join(server.ws, "Mallory")
    done = asyncio.Event()

    async def attack() -> int:
        sent = 0
        while not done.is_set() and sent < 500:  # ~10 frames/s, under the rate limit
            await attacker.send({"type": "predict", "id": f"p{sent}", "drawing": POISON})
            sent += 1
            await asyncio.sleep(0.01)
        return sent

    attack_task = asyncio.create_task(attack())
    try:
        results = await asyncio.gather(
            *(well_behaved(server.ws, f"Player {n}", 25) for n in range(3))
        )
    finally:
        done.set()
    assert await attack_task > 0
    assert [error for errors in results for error in errors] == []
    answer = await attacker.request(
        {"type": "predict", "id": "last", "drawing": POISON}, "prediction"
    )
    while answer.get("id") != "last":  # skip the answers to the attack's earlier frames
        answer = await attacker.reply("prediction")
    assert answer["type"] == "prediction"  # drawn as a dot: a drawing like any other
