"""Storage benchmark: the same repository calls on SQLite and on PostgreSQL, side by side.

    .venv/bin/python bench/storage.py [--submissions 2000] [--concurrency 200] [--writes 300]

Starts a throwaway PostgreSQL on loopback (tests/services.py; Debian's package must be
installed: `make services`). Per backend it measures
- submissions: `--concurrency` players submitting at once (group commit), acknowledged/s and
  the p50/p99 wait for the acknowledgement;
- write transactions: `repo.write_consensus` transactions one after another (a vote's shape: a few
  reads and writes), per second;
- reads: `player_by_token_hash` lookups per second.
Both databases run with their durable settings (SQLite `synchronous=FULL`; PostgreSQL's
default commit, on a throwaway cluster with `fsync=off` — so PostgreSQL's numbers here are an
upper bound for a real disk). Medians of `--repeats` runs; the machine's load average is
printed because other processes skew every number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from services import PostgresServer  # noqa: E402

from server.storage import NewAttempt, Repository, open_repository  # noqa: E402
from server.storage.consensus import ConsensusStore  # noqa: E402


def attempt(player_id: int, round_id: int, i: int) -> NewAttempt:
    return NewAttempt(
        player_id=player_id,
        round_id=round_id,
        strokes_json="[[[0,0],[10,10]]]",
        png=None,
        image=bytes(28 * 28 * 4),
        label=i % 10,
        predicted=(i * 3) % 10,
        probs=[0.1] * 10,
        model_version="v1",
    )


async def submissions(repo: Repository, total: int, concurrency: int) -> tuple[float, list[float]]:
    player = await repo.create_player(f"p{time.monotonic_ns()}", f"k{time.monotonic_ns()}", "h")
    current = await repo.create_round("v1", open_now=True)
    waits: list[float] = []
    queue = iter(range(total))

    async def player_loop() -> None:
        for i in queue:
            started = time.perf_counter()
            await repo.add_attempt(attempt(player.id, current.id, i))
            waits.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(player_loop() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), sorted(waits)


async def vote_shaped(store: ConsensusStore, player_id: int) -> None:
    """A vote's shape: a few reads and writes of reliability records."""
    voter = await store.voter(player_id)
    await store.save_voter(voter)
    drawer = await store.drawer(player_id)
    await store.save_drawer(drawer)


async def write_transactions(repo: Repository, count: int) -> float:
    player = await repo.create_player(f"w{time.monotonic_ns()}", f"w{time.monotonic_ns()}", "hw")
    started = time.perf_counter()
    for _ in range(count):
        await repo.write_consensus(partial(vote_shaped, player_id=player.id))
    return count / (time.perf_counter() - started)


async def reads(repo: Repository, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await repo.player_by_token_hash("h")
    return count / (time.perf_counter() - started)


async def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    repo = await open_repository(url)
    try:
        rate, waits = await submissions(repo, args.submissions, args.concurrency)
        return {
            "submissions/s": rate,
            "ack p50 ms": 1000 * waits[len(waits) // 2],
            "ack p99 ms": 1000 * waits[int(len(waits) * 0.99)],
            "write txns/s": await write_transactions(repo, args.writes),
            "reads/s": await reads(repo, args.writes * 5),
        }
    finally:
        await repo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    postgres = PostgresServer().start()
    results: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.repeats):
                for backend in results:  # interleaved, so both see the same machine
                    url = (
                        f"sqlite:///{tmp}/game-{run}.sqlite3"
                        if backend == "sqlite"
                        else postgres.new_database()
                    )
                    results[backend].append(asyncio.run(measure(url, args)))
    finally:
        postgres.close()
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} runs")
    columns = list(results["sqlite"][0])
    print(f"{'backend':<11}" + "".join(f"{c:>15}" for c in columns))
    for backend, runs in results.items():
        medians = [statistics.median(r[c] for r in runs) for c in columns]
        print(f"{backend:<11}" + "".join(f"{m:>15.1f}" for m in medians))


if __name__ == "__main__":
    main()
