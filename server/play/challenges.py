"""Challenges as a service: an admin attaches prompts to a round, every player on every server
process hears of them (`challenges` push), and a player's welcome says which they met already.

What a prompt may be and when it is met are game_rules.challenges'; the bonus itself is awarded
where claims settle (server/validation/settling.py), inside the settling transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from game_rules.challenges import PromptRefused, new_prompt
from game_rules.rounds import RoundState
from game_rules.settings import RuleSettings
from server.realtime.hub import Hub
from server.realtime.pubsub import Broker
from server.storage import Repository
from server.storage.consensus import ConsensusStore, Prompt

__all__ = ["Challenges", "PromptRefused"]


class Challenges:
    def __init__(
        self, repo: Repository, settings: Callable[[], RuleSettings], broker: Broker, hub: Hub
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.broker = broker
        broker.subscribe("challenges", lambda payload: hub.broadcast(payload))

    async def add(self, round_id: int, body: Any) -> dict[str, Any]:
        """Attach a prompt to a round that is not closed; raises `PromptRefused` (nothing
        changes) or `LookupError`. Returns the prompt."""
        found = await self.repo.round(round_id)
        if found is None:
            raise LookupError(f"There is no round {round_id}.")
        if found.state is RoundState.CLOSED:
            raise PromptRefused(f"Round {found.number} is closed; attach prompts to a later one.")

        async def add_prompt(store: ConsensusStore) -> tuple[list[Prompt], Prompt]:
            existing = await store.challenges(round_id)
            prompt = await store.add_challenge(
                round_id, *new_prompt(body, len(existing), self.settings())
            )
            return existing, prompt

        existing, prompt = await self.repo.write_consensus(add_prompt)
        prompts = [p.public() for p in [*existing, prompt]]
        self.broker.publish(
            "challenges", {"type": "challenges", "round_id": round_id, "challenges": prompts}
        )
        return prompt.public()

    async def of_round(self, round_id: int, player_id: int | None = None) -> dict[str, Any]:
        """`{"round_id", "challenges": [...], "met": [ids]}`: `met` are the player's."""
        reads = self.repo.consensus_reads()
        prompts = await reads.challenges(round_id)
        met = await reads.challenges_met(player_id, round_id) if player_id is not None else set()
        return {
            "round_id": round_id,
            "challenges": [p.public() for p in prompts],
            "met": sorted(met),
        }
