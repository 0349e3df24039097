"""Load benchmark: N simulated players streaming live guesses at 10 Hz while they draw.

Each player connects over a websocket, joins, and every 100 ms asks for a guess of its growing
drawing: in protocol v1 a `predict` with the whole drawing, in v2 a `points` message with only the
3 new points (`--protocol 1 2`, the default, plays both side by side on the same servers). Every
few seconds it submits the drawing and starts a new one. `--lengths 20 100 250 400` adds a table
by drawing length (guesses of drawings of N to N+150 points, v1 and v2), to show what a guess
costs as drawings grow; `--gradio PYTHON` adds the Gradio-style baseline (bench/gradio_baseline.py)
on the same model and machine. Prints, per run:
round-trip percentiles of live guesses, guesses served per second, guesses dropped as superseded
(latest-wins), submissions, errors, the servers' RSS and CPU time per served guess (all their
processes and threads, model workers included), their RSS during the run above idle per player,
the client's own CPU use (it shares the machine with the servers), and the machine's load average
(other processes skew every number here).

Servers: by default this starts `--servers K` server processes (`fool-the-model serve`) on one
temporary data directory (one game, one SQLite database in WAL mode) with a copy of the newest
model, each on its own port, and deals the players round-robin over them. `--servers 1 2` starts
a set of each and measures them side by side, taking turns run by run (with `--repeat`, medians
and the ratio of served/s are printed at the end). `--url` (repeated, or a comma list) uses
servers that are already running instead.

The client is deliberately cheap, so that it measures the server rather than itself: each player
is a bare RFC 6455 connection on an asyncio protocol, its frames pre-encoded byte strings, and a
reply is parsed only as far as its `id` (fully only when it is not a prediction).

    .venv/bin/python bench/load.py --players 200 400 600 800 --lengths 20 100 250 400 \\
        --gradio /tmp/ftm-gradio-venv/bin/python    # the issue #17 table, v1 vs v2 vs Gradio
    .venv/bin/python bench/load.py                       # 50, 200 and 500 players, 10 s each
    .venv/bin/python bench/load.py --players 200 --seconds 20 --clients 2
    .venv/bin/python bench/load.py --players 400 --servers 1 2 --repeat 3 --clients 2
    .venv/bin/python bench/load.py --url ws://127.0.0.1:8000/ws,ws://127.0.0.1:8001/ws
    .venv/bin/python bench/load.py --source /tmp/old-checkout   # the same run on another tree
    .venv/bin/python bench/load.py --source /tmp/old-checkout .  # both, taking turns run by run

On a machine shared with other busy processes, Linux's autogroup scheduler gives this whole run
(servers and client) one session's share of the CPU whatever `nice` says; as root,
`echo -10 > /proc/self/autogroup` in the shell first gives it a steadier share.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import math
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
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
from server.serving.model_files import latest_model  # noqa: E402

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
        parts = [b"[%r,%r]" % (x, y) for x, y in points]  # (finite floats: repr is their JSON)
        self.json = b",".join(parts)
        self.ends = [0]  # where the JSON of the first n points ends
        for part in parts:
            self.ends.append(self.ends[-1] + len(part) + (len(self.ends) > 1))

    def drawing(self, n: int) -> bytes:
        return b'{"strokes":[[' + self.json[: self.ends[min(n, len(self.ends) - 1)]] + b"]]}"

    def points(self, start: int, end: int) -> bytes:
        """The JSON list of points `start` to `end` (protocol v2 sends only the new ones)."""
        end = min(end, len(self.ends) - 1)
        return b"[" + self.json[self.ends[start] + (start > 0) : self.ends[end]] + b"]"


@functools.cache
def strokes(count: int) -> list[Stroke]:
    """The strokes players draw, `count` points each: made once per client process (making one
    costs more than the guesses it is drawn for, and the client shares the machine)."""
    rng = random.Random(count)
    return [Stroke(stroke_points(rng, count)) for _ in range(64)]


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

    def __init__(
        self, name: str, path: str, host: str, stats: Stats, seed: int, protocol: int
    ) -> None:
        self.name, self.path, self.host, self.stats = name, path, host, stats
        self.protocol = protocol
        self.seq = 0  # v2: of the last drawing message sent
        self.drawn: tuple[Stroke, int] | None = None  # v2: the drawing so far, for a `resync`
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
            hello = {"type": "hello", "v": self.protocol, "name": self.name}
            self.send(json.dumps(hello).encode())
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
        elif kind == "resync":  # v2: send the whole drawing (a benchmark should see none)
            self.stats.errors["resync"] += 1
            if self.drawn is not None and reply.get("seq", 0) > 0:
                self.seq += 1
                whole = b"[%s]" % self.drawn[0].points(0, self.drawn[1])
                self.send(b'{"type":"drawing","seq":%d,"strokes":%s}' % (self.seq, whole))

    # Drawing

    def draw(
        self, begin: float, seconds: float, hz: float, submit_every: float, first: int
    ) -> None:
        """Send a frame every 1/hz s for `seconds`, from a random phase after `begin`.

        A drawing starts with `first` points and grows by 3 a tick. v1 sends the whole drawing
        in every `predict`; v2 sends only the new points (`points`, asking for a guess). Every
        `submit_every` s (on average) the drawing is submitted and a new one started; with
        `submit_every` 0 (the table by drawing length), a drawing is dropped after 50 ticks and
        a new one of `first` points started, so every guess is of `first` to `first` + 150."""
        loop = asyncio.get_running_loop()
        start = begin + self.rng.uniform(0, 1 / hz)  # players are not in lockstep
        never = float("inf")
        next_submit = start + self.rng.uniform(0.3, 1.0) * submit_every if submit_every else never
        size = max(150, first + 160)
        stroke, points, sent, ticks = self.rng.choice(strokes(size)), first, 0, 0

        def tick(n: int) -> None:
            nonlocal next_submit, stroke, points, sent, ticks
            now = loop.time()
            if self.closed or now - start >= seconds:
                return
            points, ticks = points + 3, ticks + 1
            if now >= next_submit and (self.protocol == 1 or sent):  # (v2: not a cleared one)
                id_ = b"s%d" % n
                label = self.rng.randrange(10)
                if self.protocol == 1:
                    message = b'{"type":"submit","id":"%s","drawing":%s,"label":%d}' % (
                        id_, stroke.drawing(points), label)  # fmt: skip
                else:  # the drawing held at the last seq; then a new one
                    message = b'{"type":"submit","id":"%s","seq":%d,"label":%d}' % (
                        id_, self.seq, label)  # fmt: skip
                next_submit = now + self.rng.uniform(0.5, 1.5) * submit_every
                new = True
            else:
                id_ = b"p%d" % n
                if self.protocol == 1:
                    drawing = stroke.drawing(points)
                    message = b'{"type":"predict","id":"%s","drawing":%s}' % (id_, drawing)
                else:
                    self.seq += 1
                    kind = b"points" if sent else b"stroke_start"
                    message = b'{"type":"%s","seq":%d,"points":%s,"guess":true,"id":"%s"}' % (
                        kind, self.seq, stroke.points(sent, points), id_)  # fmt: skip
                    sent = points
                    self.drawn = (stroke, points)
                self.stats.sent += 1
                # A drawing as long as its stroke is done: the player starts the next one.
                new = (not submit_every and ticks >= 50) or points + 3 > size
            self.sent_at[id_] = time.perf_counter()
            self.send(message)
            if new:
                stroke, points, sent, ticks = self.rng.choice(strokes(size)), first, 0, 0
                if self.protocol == 2:
                    self.seq += 1
                    self.send(b'{"type":"clear","seq":%d}' % self.seq)
            # Like a browser's throttle: a late tick is skipped, never made up with a burst.
            due = start + (n + 1) / hz
            while due < loop.time():
                due += 1 / hz
            loop.call_at(due, tick, n + 1)

        loop.call_at(start, tick, 0)


async def run_players(
    players: list[tuple[str, str]],
    seconds: float,
    hz: float,
    submit_every: float,
    seed: int,
    protocol: int,
    first: int,
    joined_everywhere: Any = None,
) -> Stats:
    """Each (name, url) joins the server at url; then they all draw for `seconds` (once every
    client process's players have joined: `joined_everywhere`, a barrier)."""
    stats = Stats()
    cpu = time.process_time()
    loop = asyncio.get_running_loop()

    def player(index: int, name: str, url: str) -> tuple[Player, str, int]:
        host, _, rest = url.removeprefix("ws://").partition("/")
        address, _, port = host.rpartition(":")
        return Player(name, "/" + rest, host, stats, seed + index, protocol), address, int(port)

    async def join(player: Player, address: str, port: int) -> bool:
        try:
            await loop.create_connection(lambda: player, address, port)
            return await asyncio.wait_for(player.welcomed, 30)
        except (OSError, TimeoutError):
            stats.disconnects += 1
            return False

    joining = [player(i, name, url) for i, (name, url) in enumerate(players)]
    joined = await asyncio.gather(*(join(*entry) for entry in joining))
    if joined_everywhere is not None:  # the other client processes' players too: the drawing
        # is measured, not one process's joins while the other's players already draw
        with contextlib.suppress(threading.BrokenBarrierError):  # one gave up: go anyway
            await loop.run_in_executor(None, joined_everywhere.wait, 120)
    # Everyone starts within one tick of the same moment, however long this loop takes (each
    # player encodes its first drawing here): else the first ticks of the whole crowd, all
    # overdue, would go out in one burst that no real crowd sends.
    begin = loop.time() + 0.05 + 0.001 * len(joining)
    for (one, _, _), ok in zip(joining, joined, strict=True):
        if ok:
            one.draw(begin, seconds, hz, submit_every, first)
    await asyncio.sleep(begin - loop.time() + seconds + 1 / hz + 0.5)  # last replies arrive
    for one, _, _ in joining:
        one.close()
    stats.client_cpu = time.process_time() - cpu
    return stats


def client_process(
    args: tuple[list[tuple[str, str]], float, float, float, int, int, int, Any],
) -> Stats:
    return uvloop.run(run_players(*args))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a server and its model worker)."""
    tree, index = [pid], 0
    while index < len(tree):
        children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children")
        with contextlib.suppress(OSError):
            tree += [int(child) for child in children.read_text().split()]
        index += 1
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes and their descendants have used so far."""
    total = 0.0
    for pid in (p for root in pids for p in process_tree(root)):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_now_mb(pids: list[int]) -> float:
    """Resident memory of these processes and their descendants now, in MB."""
    total = 0.0
    for pid in (p for root in pids for p in process_tree(root)):
        with contextlib.suppress(OSError, KeyError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


class RssWatch:
    """The servers' highest RSS while a run goes (sampled every 0.2 s in a thread)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak, self._stop = pids, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_now_mb(self.pids))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def rss_mb(pids: list[int]) -> str:
    """Resident memory of these processes and their descendants, now and at peak, in MB."""
    if not pids:
        return "n/a"
    now = peak = 0.0
    for pid in (p for root in pids for p in process_tree(root)):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
            now += int(fields["VmRSS"].split()[0]) / 1024
            peak += int(fields["VmHWM"].split()[0]) / 1024
    return f"{now:.0f} (peak {peak:.0f})"


def run(
    urls: list[str],
    players: int,
    clients: int,
    seconds: float,
    hz: float,
    submit_every: float,
    protocol: int,
    first: int,
) -> Stats:
    """All players, dealt round-robin over `urls`, spread over `clients` processes."""
    run_id = f"{random.randrange(16**6):06x}"
    everyone = [(f"b{run_id}-{i}", urls[i % len(urls)]) for i in range(players)]
    stats = Stats()
    if clients == 1:
        stats.add(client_process((everyone, seconds, hz, submit_every, 0, protocol, first, None)))
        return stats
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(clients) as pool:
        joined_everywhere = manager.Barrier(clients)
        shares = [
            (everyone[k::clients], seconds, hz, submit_every, k * players, protocol, first,
             joined_everywhere)
            for k in range(clients)
        ]  # fmt: skip
        for share in pool.map(client_process, shares):
            stats.add(share)
    return stats


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BENCH_RULES = """
[accounts]
per_address_burst = 100000
per_address_per_hour = 100000.0
overall_burst = 100000
overall_per_minute = 100000.0
"""


class Servers:
    """`count` `fool-the-model serve` processes on one temporary data directory (one game, one
    SQLite database in WAL mode), each on its own port, started from the checkout `source`."""

    def __init__(self, count: int, model: Path, source: Path) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="ftm-bench-"))
        layout = DataLayout(self.tmp)
        layout.models_dir.mkdir()
        shutil.copyfile(model, layout.model_path(model.stem))
        card = model.with_suffix(".json")
        if card.exists():
            shutil.copyfile(card, layout.model_card_path(model.stem))
        # Every simulated player joins from this one address: lift the per-address account
        # limit a public game keeps (a checkout from before the limit has no such rule).
        if "[accounts]" in (source / "game_rules" / "defaults.toml").read_text():
            layout.rules_file.write_text(BENCH_RULES)
        self.ports = [free_port() for _ in range(count)]
        self.processes = [self._start(source, port) for port in self.ports]
        try:
            for port, process in zip(self.ports, self.processes, strict=True):
                self._wait_ready(port, process)
        except BaseException:
            self.stop()
            raise

    def _start(self, source: Path, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "--data-dir", str(self.tmp), "serve",
             "--port", str(port)],
            cwd=source,
            env={**os.environ, "FTM_ADMIN_TOKEN": "bench", "PYTHONPATH": str(source)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    @staticmethod
    def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("a server did not start (try `fool-the-model serve` by hand)")
            time.sleep(0.2)

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}/ws" for port in self.ports]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Row:
    servers: str  # how many server processes ("url" for servers this run did not start)
    protocol: int
    points: str  # the drawing's length (points) at each guess
    players: int
    sent: float  # guesses offered per second
    served: float  # guesses answered per second
    dropped: int
    p50: float
    p95: float
    p99: float
    submits: int
    submit_p99: float
    errors: int
    rss: str
    kb_per_player: float  # the servers' RSS during the run above idle, per player
    cpu_ms: float  # server CPU per served guess (all its processes and threads)
    client_cpu: float  # percent of one core
    load: float

    HEADER = (
        f"{'servers':>7} {'proto':>5} {'points':>8} {'players':>7} {'guesses/s':>9} "
        f"{'served/s':>8} {'dropped':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'submits':>7} {'sub p99':>7} {'errors':>6} {'RSS MB':>16} {'kB/player':>9} "
        f"{'CPU ms/guess':>12} {'client CPU%':>11} {'load':>5}"
    )

    def __str__(self) -> str:
        return (
            f"{self.servers:>7} {'v' + str(self.protocol):>5} {self.points:>8} {self.players:>7} "
            f"{self.sent:>9.0f} {self.served:>8.0f} {self.dropped:>7} {self.p50:>7.1f} "
            f"{self.p95:>7.1f} {self.p99:>7.1f} {self.submits:>7} {self.submit_p99:>7.1f} "
            f"{self.errors:>6} {self.rss:>16} {self.kb_per_player:>9.1f} {self.cpu_ms:>12.3f} "
            f"{self.client_cpu:>11.0f} {self.load:>5.1f}"
        )


def measure(
    label: str,
    urls: list[str],
    pids: list[int],
    players: int,
    args: argparse.Namespace,
    protocol: int,
    first: int = 4,
    submit_every: float | None = None,
) -> Row:
    submit_every = args.submit_every if submit_every is None else submit_every
    idle = rss_now_mb(pids)
    watch = RssWatch(pids)
    cpu_before = cpu_seconds(pids) if pids else float("nan")
    stats = run(urls, players, args.clients, args.seconds, args.hz, submit_every, protocol, first)
    cpu_used = cpu_seconds(pids) - cpu_before if pids else float("nan")
    peak = watch.stop()
    ms = [t * 1000 for t in stats.rtts]
    if stats.errors or stats.disconnects:
        print(f"  errors: {dict(stats.errors)}, disconnects: {stats.disconnects}")
    grown = first + 3 * 50 if not submit_every else 150
    return Row(
        servers=label,
        protocol=protocol,
        points=f"{first + 3}-{grown}",
        players=players,
        sent=stats.sent / args.seconds,
        served=stats.served / args.seconds,
        dropped=stats.sent - stats.served,
        p50=percentile(ms, 50),
        p95=percentile(ms, 95),
        p99=percentile(ms, 99),
        submits=stats.submitted,
        submit_p99=percentile([t * 1000 for t in stats.submit_rtts], 99),
        errors=sum(stats.errors.values()) + stats.disconnects,
        rss=rss_mb(pids),
        kb_per_player=max(0.0, peak - idle) * 1024 / players,
        cpu_ms=cpu_used * 1000 / max(1, stats.served),
        client_cpu=stats.client_cpu * 100 / args.seconds,
        load=os.getloadavg()[0],
    )


def summary(rows: list[Row]) -> list[str]:
    """Medians of repeated runs, and how served/s grows with server processes."""
    lines = []
    groups: dict[tuple[str, int, str, int], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.servers, row.protocol, row.points, row.players), []).append(row)
    base: dict[tuple[str, int], float] = {}  # served/s of the first setup, per load
    for (servers, protocol, points, players), group in groups.items():
        served = statistics.median(r.served for r in group)
        p99 = statistics.median(r.p99 for r in group)
        cpu = statistics.median(r.cpu_ms for r in group)
        load = (points, players)
        ratio = f" = {served / base[load]:.2f}× the first" if load in base else ""
        base.setdefault(load, served)
        lines.append(
            f"{servers:>7} server(s), v{protocol}, {points} points, {players} players, "
            f"{len(group)} runs: CPU {cpu:.3f} ms/guess, median served/s "
            f"{served:.0f}{ratio}, median p99 {p99:.1f} ms, errors "
            f"{sum(r.errors for r in group)}, load {min(r.load for r in group):.1f}–"
            f"{max(r.load for r in group):.1f}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--players", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--seconds", type=float, default=10.0, help="drawing time per run")
    parser.add_argument("--hz", type=float, default=10.0, help="live guesses per player per second")
    parser.add_argument("--submit-every", type=float, default=5.0, help="seconds between submits")
    parser.add_argument(
        "--url",
        action="append",
        help="a running server's ws URL; repeat it (or give a comma list) to deal players "
        "round-robin over several (else servers are started here)",
    )
    parser.add_argument(
        "--servers",
        type=int,
        nargs="+",
        default=[1],
        help="server processes to start, sharing one data directory; several counts (e.g. 1 2) "
        "are measured side by side, each run taking turns",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement")
    parser.add_argument("--model", type=Path, help="ONNX model (default: newest in the data dir)")
    parser.add_argument("--clients", type=int, default=1, help="client processes to spread over")
    parser.add_argument(
        "--protocol",
        type=int,
        nargs="+",
        default=[1, 2],
        choices=[1, 2],
        help="protocol versions to play, side by side on the same servers (1: the whole drawing "
        "in every predict; 2: only the new points)",
    )
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="*",
        default=[],
        help="also a table by drawing length: guesses of drawings of N to N+150 points "
        "(--length-players players, no submissions), e.g. --lengths 20 100 250 400",
    )
    parser.add_argument("--length-players", type=int, default=100)
    parser.add_argument(
        "--gradio",
        metavar="PYTHON",
        help="also the Gradio-style baseline (bench/gradio_baseline.py), run by this interpreter "
        "of a virtual environment with gradio installed, at --gradio-players",
    )
    parser.add_argument("--gradio-players", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument(
        "--source",
        type=Path,
        nargs="+",
        default=[REPO],
        help="run the servers from these checkouts, taking turns run by run (to compare)",
    )
    args = parser.parse_args()
    if (
        max(args.players) > 2000
        or args.seconds > 120
        or not 1 <= args.clients <= 8
        or not all(1 <= k <= 4 for k in args.servers)
        or not 1 <= args.repeat <= 10
    ):
        parser.error(
            "bounded: at most 2000 players, 120 s per run, 8 client processes, 4 servers and "
            "10 repeats"
        )

    setups: list[tuple[str, list[str], list[int]]] = []  # (label, urls, server pids)
    model: Path | None = args.model
    started: list[Servers] = []
    try:
        if args.url:
            urls = [url.strip() for value in args.url for url in value.split(",") if url.strip()]
            setups.append(("url", urls, []))
        else:
            if model is None:
                layout = DataLayout(resolve_data_dir())
                card = latest_model(layout)
                if card is None:
                    parser.error("no model in the data directory: run `make model` or pass --model")
                model = layout.model_path(card.version)
            for source in args.source:
                for count in args.servers:
                    servers = Servers(count, model, source.resolve())
                    started.append(servers)
                    # With several checkouts, a row says whose: "main:1" (the folder's name).
                    label = str(count)
                    if len(args.source) > 1:
                        label = f"{source.resolve().name}:{count}"
                    setups.append((label, servers.urls, servers.pids))
                    print(f"{label} server(s): pids {servers.pids}, {', '.join(servers.urls)}")
            print(f"model {model}, sources {', '.join(map(str, args.source))}")
        rows = []
        for _ in range(args.repeat):
            for players in args.players:
                for label, urls, pids in setups:
                    for protocol in args.protocol:
                        rows.append(measure(label, urls, pids, players, args, protocol))
                        print(Row.HEADER, *rows, sep="\n", flush=True)
            for length in args.lengths:
                for label, urls, pids in setups:
                    for protocol in args.protocol:
                        row = measure(
                            label, urls, pids, args.length_players, args, protocol, length, 0
                        )
                        rows.append(row)
                        print(Row.HEADER, *rows, sep="\n", flush=True)
        idle = {label: f"{rss_now_mb(pids):.0f} MB" for label, _, pids in setups if pids}
        print(f"servers' RSS now that every player left: {idle}")
        print("\n".join(summary(rows)))
        if args.gradio and model is not None:
            print("the Gradio-style baseline, same model, same machine:", flush=True)
            players = [str(n) for n in args.gradio_players]
            baseline = [args.gradio, str(REPO / "bench" / "gradio_baseline.py"), "--model"]
            subprocess.run(
                [*baseline, str(model), "--seconds", str(args.seconds), "--players", *players],
                check=False,
            )
        print("rerun:", " ".join([Path(sys.executable).name, *sys.argv]))
    finally:
        for servers in started:
            servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
