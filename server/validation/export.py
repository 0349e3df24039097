"""The votes export (`GET /api/admin/votes.jsonl`): settled claims with their raw votes, for
anyone studying the crowd. Field names and pseudonyms are the dataset export's (docs/research.md),
so the two join on `attempt_id` and `player`."""

from __future__ import annotations

import asyncio
from typing import Any

from game_rules.answers import format_answer
from server.config import DataLayout
from server.pseudonyms import anonymous_player_id, load_or_create_salt
from server.storage import Repository


async def votes_export(layout: DataLayout, repo: Repository) -> list[dict[str, Any]]:
    """Settled claims with their raw votes; player ids anonymised (HMAC, per-deployment)."""
    salt = await asyncio.to_thread(load_or_create_salt, layout.pseudonym_salt)
    records = []
    for row in await repo.consensus_reads().settled_claims():
        votes = row.consensus.votes if row.consensus else ()
        records.append(
            {
                "attempt_id": row.attempt_id,
                "round": row.round_id,
                "player": anonymous_player_id(row.drawer_id, salt),
                "claimed_label": row.claimed,
                "model_label": row.model_label,
                "outcome": row.state,
                "consensus_label": None if row.label is None else format_answer(row.label),
                "consensus_strength": row.consensus.strength if row.consensus else None,
                "votes": [
                    {
                        "voter": anonymous_player_id(v.voter_id, salt),
                        "answer": format_answer(v.answer),
                        "counted": v.counted,
                    }
                    for v in votes
                ],
            }
        )
    return records
