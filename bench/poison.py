"""Poisoned-batch benchmark: what one attacker costs the well-behaved players (issue 12).

Starts one `fool-the-model serve` on a temporary data directory (a copy of the newest model),
then runs phases of `--seconds` each, taking turns: without and with an attacker who sends a
drawing a denormal wide (`[[0, 0], [5e-324, 0]]`, which once failed every request in its batch) at
10 frames/s, under its rate limit. The well-behaved players each guess at ~10 Hz, waiting for
each answer, over 127.0.0.1 only. Prints their round trips (p50, p99) and errors side by side,
with medians over `--repeat` turns. Every loop is bounded: the run stops by itself.

    .venv/bin/python bench/poison.py                      # 8 players, 5 s phases, 3 turns
    .venv/bin/python bench/poison.py --players 20 --seconds 10 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import REPO, Servers, percentile

from server.config import DataLayout, resolve_data_dir
from server.serving.model_files import latest_model

SEVEN = {"strokes": [[[10, 10], [90, 10], [40, 95]]]}
POISON = {"strokes": [[[0, 0], [5e-324, 0]]]}


@dataclass
class Phase:
    rtts: list[float] = field(default_factory=list)  # ms
    errors: Counter[str] = field(default_factory=Counter)


async def player(url: str, name: str, until: float, phase: Phase) -> None:
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": name}))
        json.loads(await ws.recv())
        n = 0
        while time.monotonic() < until:
            n += 1
            started = time.perf_counter()
            await ws.send(json.dumps({"type": "predict", "id": str(n), "drawing": SEVEN}))
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if reply.get("id") == str(n):
                    break
            if reply["type"] == "error":
                phase.errors[reply["code"]] += 1
            else:
                phase.rtts.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.1)


async def attacker(url: str, name: str, until: float) -> None:
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": name}))
        n = 0
        while time.monotonic() < until:
            n += 1
            await ws.send(json.dumps({"type": "predict", "id": f"p{n}", "drawing": POISON}))
            await asyncio.sleep(0.1)


async def run_phase(url: str, players: int, seconds: float, attack: bool, turn: int) -> Phase:
    phase = Phase()
    until = time.monotonic() + seconds
    tag = f"{'a' if attack else 'q'}{turn}"
    tasks = [player(url, f"P{tag}-{n}", until, phase) for n in range(players)]
    if attack:
        tasks.append(attacker(url, f"M{tag}", until))
    await asyncio.gather(*tasks)
    return phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", type=Path, help="ONNX model (default: newest in the data dir)")
    args = parser.parse_args()
    model = args.model
    if model is None:
        layout = DataLayout(resolve_data_dir(None))
        card = latest_model(layout)
        if card is None:
            parser.error("no model in the data directory: run `make model` or pass --model")
        model = layout.model_path(card.version)
    servers = Servers(1, model, REPO)
    rows: dict[bool, list[Phase]] = {False: [], True: []}
    try:
        for turn in range(args.repeat):
            for attack in (False, True):
                phase = asyncio.run(
                    run_phase(servers.urls[0], args.players, args.seconds, attack, turn)
                )
                rows[attack].append(phase)
    finally:
        servers.stop()
    print(f"{args.players} players at ~10 Hz, {args.seconds:g} s phases, {args.repeat} turns")
    print(f"{'turn':>4} | {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | {'p50 ms':>7} "
          f"{'p99 ms':>7} {'errors':>6}   (without | with the attacker)")  # fmt: skip
    medians: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
    for turn in range(args.repeat):
        cells = []
        for attack in (False, True):
            phase = rows[attack][turn]
            p50, p99 = percentile(phase.rtts, 50), percentile(phase.rtts, 99)
            errors = sum(phase.errors.values())
            medians[attack].append((p50, p99, errors))
            cells.append(f"{p50:7.1f} {p99:7.1f} {errors:6d}")
        print(f"{turn:>4} | {cells[0]} | {cells[1]}")
    cells = []
    for attack in (False, True):
        p50s, p99s, errors = zip(*medians[attack], strict=True)
        cells.append(
            f"{statistics.median(p50s):7.1f} {statistics.median(p99s):7.1f} {sum(errors):6d}"
        )
    print(f"{'med':>4} | {cells[0]} | {cells[1]}")
    for attack in (False, True):
        codes = sum((phase.errors for phase in rows[attack]), Counter())
        if codes:
            print(f"errors {'with' if attack else 'without'} the attacker: {dict(codes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
