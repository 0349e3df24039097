"""Load benchmark: N simulated players streaming live guesses at 10 Hz while they draw.

Each player connects over a websocket, joins, and every 100 ms sends its growing drawing as a
`predict`; every few seconds it submits the drawing and starts a new one. The server runs as a
child process (a temporary data directory with a copy of the newest model) unless `--url` points
at one. Prints, per player count: round-trip percentiles of live guesses, guesses served per
second, guesses dropped as superseded (latest-wins), submissions, errors, server RSS, the
server's CPU time per served guess (all its threads; one core serves about 1000 / that per
second), the client's own CPU use (it shares the machine with the server), and the machine's
load average (other processes skew every number here).

The client is deliberately cheap, so that it measures the server rather than itself: each player
is a bare RFC 6455 connection on an asyncio protocol, its frames pre-encoded byte strings, and a
reply is parsed only as far as its `id` (fully only when it is not a prediction).

    .venv/bin/python bench/load.py                       # 50, 200 and 500 players, 10 s each
    .venv/bin/python bench/load.py --players 200 --seconds 20 --clients 2
    .venv/bin/python bench/load.py --source /tmp/old-checkout   # the same run on another tree

On a machine shared with other busy processes, Linux's autogroup scheduler gives this whole run
(server and client) one session's share of the CPU whatever `nice` says; as root,
`echo -10 > /proc/self/autogroup` in the shell first gives it a steadier share.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import multiprocessing
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.config import DataLayout, resolve_data_dir  # noqa: E402
from server.models import latest_model  # noqa: E402

PREDICTION = b'{"type":"prediction","id":"'


@dataclass
class Stats:
    rtts: list[float] = field(default_factory=list)  # seconds, live guesses
    submit_rtts: list[float] = field(default_factory=list)
    sent: int = 0
    served: int = 0
    submitted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    client_cpu: float = 0.0  # seconds of CPU the client processes used

    def add(self, other: Stats) -> None:
        self.rtts += other.rtts
        self.submit_rtts += other.submit_rtts
        self.sent += other.sent
        self.served += other.served
        self.submitted += other.submitted
        self.errors += other.errors
        self.disconnects += other.disconnects
        self.client_cpu += other.client_cpu


def stroke_points(rng: random.Random, count: int) -> list[list[float]]:
    """A wobbly loop, like a hand drawing a digit, `count` points long."""
    cx, cy, r = rng.uniform(120, 160), rng.uniform(120, 160), rng.uniform(60, 100)
    return [
        [round(cx + r * math.cos(t / 9) + rng.uniform(-2, 2), 1),
         round(cy + r * math.sin(t / 7) * 1.3 + rng.uniform(-2, 2), 1)]
        for t in range(count)
    ]  # fmt: skip


class Stroke:
    """One stroke as JSON, encoded once: the drawing of its first `n` points is a slice."""

    def __init__(self, points: list[list[float]]) -> None:
        parts = [json.dumps(point, separators=(",", ":")).encode() for point in points]
        self.json = b",".join(parts)
        self.ends = [0]  # where the JSON of the first n points ends
        for part in parts:
            self.ends.append(self.ends[-1] + len(part) + (len(self.ends) > 1))

    def drawing(self, n: int) -> bytes:
        return b'{"strokes":[[' + self.json[: self.ends[min(n, len(self.ends) - 1)]] + b"]]}"


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame. The all-zero masking key is valid RFC 6455 (browsers pick random
    keys to protect proxies, which a benchmark on 127.0.0.1 does not meet); it makes masking
    free."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class Player(asyncio.Protocol):
    """One simulated player: handshake, `hello`, then a frame every tick from a timer."""

    def __init__(self, name: str, path: str, host: str, stats: Stats, seed: int) -> None:
        self.name, self.path, self.host, self.stats = name, path, host, stats
        self.rng = random.Random(seed)
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.buffer = bytearray()
        self.upgraded = False
        self.welcomed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.sent_at: dict[bytes, float] = {}
        self.closed = False

    # Connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.stats.disconnects += 1
            self.closed = True
        if not self.welcomed.done():
            self.welcomed.set_result(False)

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(client_frame(payload, opcode))

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.send(struct.pack("!H", 1000), opcode=0x8)
            self.transport.close()

    # Reading

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.stats.errors["handshake"] += 1
                self.welcomed.set_result(False)
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.send(json.dumps({"type": "hello", "v": 1, "name": self.name}).encode())
        while (frame := self.next_frame()) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                self.on_text(payload)
            elif opcode == 0x9:  # ping
                self.send(payload, opcode=0xA)
            elif opcode == 0x8:
                self.close()

    def next_frame(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        length, start = buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            (length,), start = struct.unpack_from("!H", buffer, 2), 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            (length,), start = struct.unpack_from("!Q", buffer, 2), 10
        if len(buffer) < start + length:
            return None
        opcode, payload = buffer[0] & 0x0F, bytes(buffer[start : start + length])
        del buffer[: start + length]
        return opcode, payload

    def on_text(self, payload: bytes) -> None:
        now = time.perf_counter()
        if payload.startswith(PREDICTION):  # the common case: read no further than the id
            end = payload.index(b'"', len(PREDICTION))
            started = self.sent_at.pop(payload[len(PREDICTION) : end], None)
            if started is not None:
                self.stats.served += 1
                self.stats.rtts.append(now - started)
            return
        reply = json.loads(payload)
        kind = reply["type"]
        if kind == "welcome":
            self.welcomed.set_result(True)
        elif kind == "submitted":
            started = self.sent_at.pop((reply.get("id") or "").encode(), None)
            if started is not None:
                self.stats.submitted += 1
                self.stats.submit_rtts.append(now - started)
        elif kind == "error":
            self.stats.errors[reply["code"]] += 1
            if not self.welcomed.done():
                self.welcomed.set_result(False)

    # Drawing

    def draw(self, seconds: float, hz: float, submit_every: float) -> None:
        """Send a frame every 1/hz s for `seconds`, starting at a random phase."""
        loop = asyncio.get_running_loop()
        start = loop.time() + self.rng.uniform(0, 1 / hz)  # players are not in lockstep
        next_submit = start + self.rng.uniform(0.3, 1.0) * submit_every
        stroke, points = Stroke(stroke_points(self.rng, 150)), 4  # drawn a few points per tick

        def tick(n: int) -> None:
            nonlocal next_submit, stroke, points
            now = loop.time()
            if self.closed or now - start >= seconds:
                return
            points += 3
            drawing = stroke.drawing(points)
            if now >= next_submit:
                id_ = b"s%d" % n
                label = self.rng.randrange(10)
                message = b'{"type":"submit","id":"%s","drawing":%s,"label":%d}' % (
                    id_, drawing, label)  # fmt: skip
                next_submit = now + self.rng.uniform(0.5, 1.5) * submit_every
                stroke, points = Stroke(stroke_points(self.rng, 150)), 4
            else:
                id_ = b"p%d" % n
                message = b'{"type":"predict","id":"%s","drawing":%s}' % (id_, drawing)
                self.stats.sent += 1
            self.sent_at[id_] = time.perf_counter()
            self.send(message)
            # Like a browser's throttle: a late tick is skipped, never made up with a burst.
            due = start + (n + 1) / hz
            while due < loop.time():
                due += 1 / hz
            loop.call_at(due, tick, n + 1)

        loop.call_at(start, tick, 0)


async def run_players(
    url: str, names: list[str], seconds: float, hz: float, submit_every: float, seed: int
) -> Stats:
    stats = Stats()
    cpu = time.process_time()
    loop = asyncio.get_running_loop()
    host, _, rest = url.removeprefix("ws://").partition("/")
    address, _, port = host.rpartition(":")
    players = [Player(name, "/" + rest, host, stats, seed + i) for i, name in enumerate(names)]

    async def join(player: Player) -> bool:
        try:
            await loop.create_connection(lambda: player, address, int(port))
            return await asyncio.wait_for(player.welcomed, 30)
        except (OSError, TimeoutError):
            stats.disconnects += 1
            return False

    joined = await asyncio.gather(*(join(player) for player in players))
    for player, ok in zip(players, joined, strict=True):
        if ok:
            player.draw(seconds, hz, submit_every)
    await asyncio.sleep(seconds + 1 / hz + 0.5)  # the last replies arrive meanwhile
    for player in players:
        player.close()
    stats.client_cpu = time.process_time() - cpu
    return stats


def client_process(args: tuple[str, list[str], float, float, float, int]) -> Stats:
    return uvloop.run(run_players(*args))


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


def run(
    url: str, players: int, clients: int, seconds: float, hz: float, submit_every: float
) -> Stats:
    """All players, spread over `clients` processes (each one event loop)."""
    run_id = f"{random.randrange(16**6):06x}"
    names = [f"b{run_id}-{i}" for i in range(players)]
    shares = [
        (url, names[k::clients], seconds, hz, submit_every, k * players) for k in range(clients)
    ]
    stats = Stats()
    if clients == 1:
        stats.add(client_process(shares[0]))
        return stats
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        for share in pool.map(client_process, shares):
            stats.add(share)
    return stats


class ServerProcess:
    def __init__(self, model: Path, source: Path) -> None:
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
            cwd=source,
            env={**os.environ, "FTM_ADMIN_TOKEN": "bench", "PYTHONPATH": str(source)},
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
    parser.add_argument("--clients", type=int, default=1, help="client processes to spread over")
    parser.add_argument(
        "--source", type=Path, default=REPO, help="run the server from this checkout (to compare)"
    )
    args = parser.parse_args()
    if max(args.players) > 2000 or args.seconds > 120 or not 1 <= args.clients <= 8:
        parser.error("bounded: at most 2000 players, 120 s per run and 8 client processes")

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
        server = ServerProcess(model, args.source.resolve())
        url, pid = f"ws://127.0.0.1:{server.port}/ws", server.process.pid
        print(f"server pid {pid} on port {server.port}, model {model}, source {args.source}")

    header = (
        f"{'players':>7} {'guesses/s':>9} {'served/s':>8} {'dropped':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'submits':>7} {'sub p99':>7} {'errors':>6} "
        f"{'RSS MB':>16} {'CPU ms/guess':>12} {'client CPU%':>11} {'load':>5}"
    )
    rows = []
    try:
        for players in args.players:
            cpu_before = cpu_seconds(pid)
            stats = run(url, players, args.clients, args.seconds, args.hz, args.submit_every)
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
                f"{stats.client_cpu * 100 / args.seconds:>11.0f} "
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
