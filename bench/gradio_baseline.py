"""The Gradio-style baseline of bench/load.py: the stack of the original Hugging Face demo of this
idea (a Gradio app), serving the same ONNX model, under the same kind of load.

The app takes a drawing's strokes (JSON text), draws them with our renderer
(server/serving/preprocess.py) and answers the class probabilities from ONNX Runtime, one request
at a time, as such a demo does. Each simulated player calls it through `gradio_client` every
1/hz s (a late call is skipped, never made up); the table has the same columns as load.py's.

Gradio pulls in a web stack of its own, so it runs from its own virtual environment, not the
game's (which it would upgrade):

    python -m venv /tmp/ftm-gradio-venv
    /tmp/ftm-gradio-venv/bin/pip install gradio gradio_client onnxruntime numpy pillow
    /tmp/ftm-gradio-venv/bin/python bench/gradio_baseline.py --model DATA/models/v1.onnx

bench/load.py runs it after its own rows with `--gradio /tmp/ftm-gradio-venv/bin/python`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def serve(model: Path, port: int) -> None:
    import gradio as gr
    import numpy as np
    import onnxruntime as ort

    from server.serving.preprocess import strokes_to_image

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def predict(strokes: str) -> dict[str, float]:
        image = strokes_to_image(json.loads(strokes))[None, None].astype(np.float32)
        (log_probs,) = session.run(None, {"image": image})
        return {str(k): float(p) for k, p in enumerate(np.exp(log_probs[0]))}

    demo = gr.Interface(fn=predict, inputs=gr.Textbox(), outputs=gr.Label(num_top_classes=10))
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


def stroke(rng: random.Random, count: int) -> list[list[float]]:
    cx, cy, r = rng.uniform(120, 160), rng.uniform(120, 160), rng.uniform(60, 100)
    return [
        [round(cx + r * math.cos(t / 9), 1), round(cy + r * math.sin(t / 7) * 1.3, 1)]
        for t in range(count)
    ]


def load(url: str, players: int, seconds: float, hz: float) -> tuple[int, list[float], int]:
    """`players` threads calling at `hz` for `seconds`: (sent, round trips, errors)."""
    from gradio_client import Client

    rtts: list[float] = []
    counts = {"sent": 0, "errors": 0}
    lock = threading.Lock()
    begin = time.monotonic() + 1.0

    def player(seed: int) -> None:
        rng = random.Random(seed)
        try:
            client = Client(url, verbose=False)  # (reads the app's config: may time out)
        except Exception:
            with lock:
                counts["errors"] += 1
            return
        points, drawing = 4, stroke(rng, 150)
        time.sleep(max(0.0, begin - time.monotonic()) + rng.uniform(0, 1 / hz))
        start, n = time.monotonic(), 0
        while (now := time.monotonic()) - start < seconds:
            points = points + 3 if points < 150 else 4
            sent = time.perf_counter()
            try:
                client.predict(json.dumps([drawing[:points]]), api_name="/predict")
                with lock:
                    rtts.append(time.perf_counter() - sent)
            except Exception:
                with lock:
                    counts["errors"] += 1
            with lock:
                counts["sent"] += 1
            n += 1
            due = start + n / hz
            while due < time.monotonic():  # late: skip the missed ticks
                n += 1
                due = start + n / hz
            time.sleep(max(0.0, due - time.monotonic()))
        del now

    threads = [threading.Thread(target=player, args=(k,)) for k in range(players)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["sent"], rtts, counts["errors"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--players", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the app, on this port
    args = parser.parse_args()
    if args.serve:
        serve(args.model, args.serve)
        return 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = subprocess.Popen(
        [sys.executable, __file__, "--model", str(args.model), "--serve", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if app.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the Gradio app did not start")
            time.sleep(0.5)
        print(f"{'stack':>7} {'players':>7} {'guesses/s':>9} {'served/s':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'errors':>6} {'CPU ms/guess':>12}")  # fmt: skip
        for players in args.players:
            cpu = cpu_seconds(app.pid)
            sent, rtts, errors = load(url, players, args.seconds, args.hz)
            used = cpu_seconds(app.pid) - cpu
            ms = [t * 1000 for t in rtts]
            print(
                f"{'gradio':>7} {players:>7} {sent / args.seconds:>9.0f} "
                f"{len(rtts) / args.seconds:>8.0f} {percentile(ms, 50):>7.1f} "
                f"{percentile(ms, 99):>7.1f} {errors:>6} {used * 1000 / max(1, len(rtts)):>12.2f}",
                flush=True,
            )
    finally:
        app.terminate()
        app.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
