"""The server settles a claim exactly as the rules (and so the crowd simulation) do.

Property: for any voters' records and any sequence of answers, voting through the server's
tasks (SQLite, one transaction per vote) leaves the same claim, voter, pair and drawer records,
score event, gold and drawer's points as folding the same votes through
`game_rules.validation` over plain dicts — which is what `game_rules.simulation` does.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path

from consensus_helpers import new_attempt
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from game_rules import reliability as rl
from game_rules.answers import ANSWERS
from game_rules.consensus import Claim, new_claim
from game_rules.scoring import ClaimSettled
from game_rules.validation import cast_vote, settle
from server.config import default_rules
from server.prometheus import Metrics
from server.realtime.pubsub import LocalBroker
from server.storage import Player, SqliteRepository
from server.storage.consensus import ConsensusStore
from server.validation.pushes import Pushes
from server.validation.tasks import Tasks

S = default_rules()
CLAIMED, MODEL = 7, 1
PROBS = [0.02] * 10
PROBS[MODEL] = 0.82


def voter_record(player_id: int, right: int, wrong: int, lost: int) -> rl.Voter:
    voter = rl.Voter(player_id)
    for i in range(right):
        voter = rl.record_gold(voter, i % 10, i % 10)
    for i in range(wrong):
        voter = rl.record_gold(voter, i % 10, (i + 3) % ANSWERS)
    for _ in range(lost):
        voter = rl.record_settled_vote(voter, won=False)
    return voter


records = st.tuples(
    st.integers(0, 40), st.integers(0, 4), st.integers(0, 3), st.integers(0, 6)
)  # gold right, gold wrong, settled votes lost, earlier votes on this drawer (all agreeing)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    voters=st.lists(records, min_size=1, max_size=9),
    answers=st.lists(
        st.sampled_from([CLAIMED, CLAIMED, CLAIMED, MODEL, MODEL, 3, 10]), min_size=9, max_size=9
    ),
    drawer_history=st.tuples(st.integers(0, 8), st.integers(0, 8)),
)
@example(  # careful voters all confirm: verified, sure enough to become gold
    voters=[(40, 0, 0, 0)] * 9, answers=[CLAIMED] * 9, drawer_history=(8, 0)
)
@example(  # careful voters all read the model's answer: rejected
    voters=[(40, 0, 0, 0)] * 9, answers=[MODEL] * 9, drawer_history=(0, 8)
)
def test_the_server_and_the_rules_settle_a_claim_alike(
    voters: list[tuple[int, int, int, int]],
    answers: list[int],
    drawer_history: tuple[int, int],
) -> None:
    verified, rejected = drawer_history
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_compare(Path(tmp), voters, answers, verified, rejected))


async def _compare(
    tmp: Path,
    voter_specs: list[tuple[int, int, int, int]],
    answers: list[int],
    verified: int,
    rejected: int,
) -> None:
    repo = await SqliteRepository.open(tmp / "game.sqlite3")
    try:
        drawer_player = await repo.create_player("drawer", "drawer", "t0")
        players = [
            await repo.create_player(f"v{i}", f"v{i}", f"t{i + 1}") for i in range(len(voter_specs))
        ]
        game_round = await repo.open_first_round("v1")
        assert game_round is not None
        attempt_id = await repo.add_attempt(
            new_attempt(drawer_player.id, game_round.id, CLAIMED, MODEL, PROBS)
        )

        # The same records on both sides.
        drawer = rl.Drawer(drawer_player.id, verified + rejected, verified)
        voters = {
            p.id: voter_record(p.id, right, wrong, lost)
            for p, (right, wrong, lost, _) in zip(players, voter_specs, strict=True)
        }
        pairs = {
            p.id: rl.Pair(drawer.player_id, p.id, agreed, agreed)
            for p, (*_, agreed) in zip(players, voter_specs, strict=True)
        }

        async def seed(store: ConsensusStore) -> None:
            await store.save_drawer(drawer)
            for voter in voters.values():
                await store.save_voter(voter)
            for pair in pairs.values():
                await store.save_pair(pair)

        await repo.write_consensus(seed)

        # The rules over dicts, as the simulation runs them.
        claim = new_claim(
            attempt_id, drawer.player_id, CLAIMED, MODEL, rl.drawer_prior(drawer, S), S
        )
        settled = None
        voting: list[tuple[Player, int]] = []
        for player, answer in zip(players, answers, strict=False):
            if not claim.pending:
                break
            voting.append((player, answer))
            cast = cast_vote(claim, voters[player.id], pairs[player.id], drawer, answer, S)
            claim, pairs[player.id] = cast.claim, cast.pair
            if not claim.pending:
                settled = settle(claim, voters, drawer, game_round.id, PROBS[MODEL], S)
                voters.update((v.player_id, v) for v in settled.voters)
                drawer = settled.drawer or drawer

        # The server, vote by vote.
        broker = LocalBroker(Metrics())
        heard: list[dict[str, object]] = []
        broker.subscribe("claim_settled", heard.append)
        tasks = Tasks(repo, lambda: S, lambda: game_round.id, Pushes(repo, broker, lambda: S))

        async def add_task(store: ConsensusStore, task_id: str, voter_id: int) -> None:
            await store.add_task(task_id, voter_id, attempt_id, None)

        for i, (player, answer) in enumerate(voting):
            await repo.write_consensus(partial(add_task, task_id=f"task{i}", voter_id=player.id))
            await tasks.vote(player, f"task{i}", answer if answer != 10 else "x")
        await asyncio.sleep(0)  # the broker delivers on the next loop iteration

        reads = repo.consensus_reads()
        row = await reads.claim(attempt_id)
        assert row is not None
        assert _same(row.consensus, claim)
        assert row.state == (str(claim.outcome) if claim.outcome else "pending")
        for player, _ in voting:
            assert await reads.voter(player.id) == voters[player.id]
            assert await reads.pair(drawer.player_id, player.id) == pairs[player.id]
        assert await reads.drawer(drawer.player_id) == drawer
        events = [e for e in await reads.events() if isinstance(e, ClaimSettled)]
        expected = settled.event if settled else None
        assert [replace(e, seq=1) for e in events] == ([expected] if expected else [])
        stranger = await repo.create_player("stranger", "stranger", "tx")
        _, gold_claims = await reads.gold_candidates(stranger.id)
        gold = [await reads.gold(g.gold_id) for g in gold_claims]
        assert [(g.attempt_id, g.truth) for g in gold if g] == (
            [(attempt_id, settled.gold_label)] if settled and settled.gold_label is not None else []
        )
        if settled is not None:
            message = heard[-1]["message"]
            assert isinstance(message, dict)
            assert message["points"] == settled.points
            assert message["outcome"] == str(claim.outcome)
        else:
            assert heard == []
    finally:
        await repo.close()


def _same(stored: Claim | None, folded: Claim) -> bool:
    """The stored consensus is the folded claim (a claim nobody voted on is stored as None)."""
    return stored == folded if stored is not None else not folded.votes
