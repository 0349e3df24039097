"""Load benchmark: N simulated players streaming live guesses at 10 Hz while they draw.

Each player connects over a websocket, joins, and every 100 ms sends its growing drawing as a
`predict`; every few seconds it submits the drawing and starts a new one. The server runs as a
child process (a temporary data directory with a copy of the newest model) unless `--url` points
at one. Prints, per player count: round-trip percentiles of live guesses, guesses served per
second, guesses dropped as superseded (latest-wins), submissions, errors, server RSS, the
server's CPU time per served guess (all its threads; one core serves about 1000 / that per
second), and the machine's load average (other processes skew every number here).

    .venv/bin/python bench/load.py                       # 50, 200 and 500 players, 10 s each
    .venv/bin/python bench/load.py --players 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.config import DataLayout, resolve_data_dir  # noqa: E402
from server.models import latest_model  # noqa: E402


@dataclass
class Stats:
    rtts: list[float] = field(default_factory=list)  # seconds, live guesses
    submit_rtts: list[float] = field(default_factory=list)
    sent: int = 0
    served: int = 0
    submitted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0


def stroke_points(rng: random.Random, count: int) -> list[list[float]]:
    """A wobbly loop, like a hand drawing a digit, `count` points long so far."""
    cx, cy, r = rng.uniform(120, 160), rng.uniform(120, 160), rng.uniform(60, 100)
    return [
        [round(cx + r * math.cos(t / 9) + rng.uniform(-2, 2), 1),
         round(cy + r * math.sin(t / 7) * 1.3 + rng.uniform(-2, 2), 1)]
        for t in range(count)
    ]  # fmt: skip


async def player(
    url: str, name: str, seconds: float, hz: float, submit_every: float, stats: Stats, seed: int
) -> None:
    rng = random.Random(seed)
    sent_at: dict[str, float] = {}
    try:
        ws = await connect(url, max_size=2**20, compression=None)
    except OSError:
        stats.disconnects += 1
        return
    try:
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": name}))
        welcome = json.loads(await ws.recv())
        if welcome["type"] != "welcome":
            stats.errors[welcome.get("code", "?")] += 1
            return
        reader = asyncio.create_task(read_replies(ws, sent_at, stats))
        await draw(ws, rng, seconds, hz, submit_every, sent_at, stats)
        await asyncio.sleep(0.5)  # let the last replies arrive
        reader.cancel()
    except Exception:
        stats.disconnects += 1
    finally:
        await ws.close()


async def draw(
    ws: ClientConnection,
    rng: random.Random,
    seconds: float,
    hz: float,
    submit_every: float,
    sent_at: dict[str, float],
    stats: Stats,
) -> None:
    await asyncio.sleep(rng.uniform(0, 1 / hz))  # players are not in lockstep
    start = time.perf_counter()
    tick, points = 0, 4
    stroke = stroke_points(rng, 150)  # drawn a few points per tick
    next_submit = start + rng.uniform(0.3, 1.0) * submit_every
    while (now := time.perf_counter()) - start < seconds:
        points += 3
        drawing = {"strokes": [stroke[:points]]}
        if now >= next_submit:
            id_ = f"s{tick}"
            label = rng.randrange(10)
            message = {"type": "submit", "id": id_, "drawing": drawing, "label": label}
            next_submit = now + rng.uniform(0.5, 1.5) * submit_every
            points, stroke = 4, stroke_points(rng, 150)
        else:
            id_ = f"p{tick}"
            message = {"type": "predict", "id": id_, "drawing": drawing}
            stats.sent += 1
        sent_at[id_] = time.perf_counter()
        await ws.send(json.dumps(message, separators=(",", ":")))
        tick += 1
        # Like a browser's throttle: a late tick is skipped, never made up with a burst.
        due = start + tick / hz
        while due < time.perf_counter():
            due += 1 / hz
        await asyncio.sleep(due - time.perf_counter())


async def read_replies(ws: ClientConnection, sent_at: dict[str, float], stats: Stats) -> None:
    try:
        async for raw in ws:
            now = time.perf_counter()
            reply = json.loads(raw)
            kind = reply["type"]
            started = sent_at.pop(reply.get("id") or "", None)
            if kind == "prediction" and started is not None:
                stats.served += 1
                stats.rtts.append(now - started)
            elif kind == "submitted" and started is not None:
                stats.submitted += 1
                stats.submit_rtts.append(now - started)
            elif kind == "error":
                stats.errors[reply["code"]] += 1
    except Exception:
        stats.disconnects += 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time the server process has used so far."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | None) -> str:
    if pid is None:
        return "n/a"
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    rss, peak = (int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return f"{rss:.0f} (peak {peak:.0f})"


async def run(
    url: str, players: int, seconds: float, hz: float, submit_every: float, run_id: str
) -> Stats:
    stats = Stats()
    await asyncio.gather(
        *(
            player(url, f"b{run_id}-{i}", seconds, hz, submit_every, stats, seed=i)
            for i in range(players)
        )
    )
    return stats


class ServerProcess:
    def __init__(self, model: Path) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="ftm-bench-"))
        layout = DataLayout(self.tmp)
        layout.models_dir.mkdir()
        version = model.stem
        shutil.copyfile(model, layout.model_path(version))
        card = model.with_suffix(".json")
        if card.exists():
            shutil.copyfile(card, layout.model_card_path(version))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "--data-dir", str(self.tmp), "serve",
             "--port", str(self.port)],
            cwd=REPO,
            env={**os.environ, "FTM_ADMIN_TOKEN": "bench"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start (try `fool-the-model serve` by hand)")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--players", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--seconds", type=float, default=10.0, help="drawing time per run")
    parser.add_argument("--hz", type=float, default=10.0, help="live guesses per player per second")
    parser.add_argument("--submit-every", type=float, default=5.0, help="seconds between submits")
    parser.add_argument("--url", help="an already running server's ws URL (else one is started)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: newest in the data dir)")
    args = parser.parse_args()
    if max(args.players) > 2000 or args.seconds > 120:
        parser.error("bounded: at most 2000 players and 120 s per run")

    server: ServerProcess | None = None
    if args.url:
        url, pid = args.url, None
    else:
        model = args.model
        if model is None:
            card = latest_model(DataLayout(resolve_data_dir()))
            if card is None:
                parser.error("no model in the data directory: run `make model` or pass --model")
            model = DataLayout(resolve_data_dir()).model_path(card.version)
        server = ServerProcess(model)
        url, pid = f"ws://127.0.0.1:{server.port}/ws", server.process.pid
        print(f"server pid {pid} on port {server.port}, model {model}")

    header = (
        f"{'players':>7} {'guesses/s':>9} {'served/s':>8} {'dropped':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'submits':>7} {'sub p99':>7} {'errors':>6} "
        f"{'RSS MB':>16} {'CPU ms/guess':>12} {'load':>5}"
    )
    rows = []
    try:
        for players in args.players:
            run_id = f"{random.randrange(16**6):06x}"
            cpu_before = cpu_seconds(pid)
            stats = uvloop.run(run(url, players, args.seconds, args.hz, args.submit_every, run_id))
            cpu_used = cpu_seconds(pid) - cpu_before
            cpu_ms_per_guess = cpu_used * 1000 / max(1, stats.served)
            ms = [t * 1000 for t in stats.rtts]
            errors = sum(stats.errors.values()) + stats.disconnects
            sent, served = stats.sent / args.seconds, stats.served / args.seconds
            rows.append(
                f"{players:>7} {sent:>9.0f} {served:>8.0f} {stats.sent - stats.served:>7} "
                f"{percentile(ms, 50):>7.1f} {percentile(ms, 95):>7.1f} {percentile(ms, 99):>7.1f} "
                f"{stats.submitted:>7} "
                f"{percentile([t * 1000 for t in stats.submit_rtts], 99):>7.1f} {errors:>6} "
                f"{rss_mb(pid):>16} {cpu_ms_per_guess:>12.2f} "
                f"{os.getloadavg()[0]:>5.1f}"
            )
            print(header, *rows, sep="\n", flush=True)
            if stats.errors or stats.disconnects:
                print(f"  errors: {dict(stats.errors)}, disconnects: {stats.disconnects}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
