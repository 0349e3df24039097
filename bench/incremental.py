"""What a live guess costs the model worker as the drawing grows: protocol v1 (the whole drawing in
every `predict`) against v2 (only the 3 new points; the worker holds the drawing and its raster).

Runs the worker's own batch function (`server.serving.model_worker.infer`) in this process on
batches of 32 players' guesses, no websocket and no event loop, and prints the median CPU time per
guess by drawing length. (The event loop's share, the same for both, is in bench/load.py.)

    .venv/bin/python bench/incremental.py --model DATA/models/v1.onnx
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from load import stroke_points  # noqa: E402  (bench/load.py: the same wobbly strokes)

from server.serving import model_worker  # noqa: E402
from server.serving.inference import load_session  # noqa: E402

BATCH = 32
GUESSES = 10  # per drawing, 3 points apart


def cpu_per_guess(run: list[list[tuple[str, object, bool]]], session: object) -> float:
    """Median CPU seconds per guess over the batches of `run`."""
    times = []
    for items in run:
        started = time.process_time()
        model_worker.infer(session, "v", items)  # type: ignore[arg-type]
        times.append((time.process_time() - started) / len(items))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 100, 200, 400])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    session = load_session(args.model, 1)
    rng = random.Random(0)
    print(f"{'points':>9} {'v1 µs/guess':>11} {'v2 µs/guess':>11} {'v1/v2':>6}")
    for length in args.lengths:
        v1s, v2s = [], []
        for _ in range(args.repeat):
            drawings = [stroke_points(rng, length + 3 * GUESSES) for _ in range(BATCH)]
            v1 = [
                [("predict", json.dumps({"type": "predict", "id": "p", "drawing": {
                    "strokes": [d[: length + 3 * g]]}}), False) for d in drawings]
                for g in range(1, GUESSES + 1)
            ]  # fmt: skip
            v1s.append(cpu_per_guess(v1, session))
            model_worker.HELD.clear()
            start = [
                ("increments", (k, [json.dumps({"type": "drawing", "seq": 1,
                                                "strokes": [d[:length]]})]), False)
                for k, d in enumerate(drawings)
            ]  # fmt: skip
            model_worker.infer(session, "v", start)  # type: ignore[arg-type]
            v2 = [
                [("increments", (k, [json.dumps({"type": "points", "seq": 1 + g, "guess": True,
                    "points": d[length + 3 * (g - 1) : length + 3 * g]})]), False)
                 for k, d in enumerate(drawings)]
                for g in range(1, GUESSES + 1)
            ]  # fmt: skip
            v2s.append(cpu_per_guess(v2, session))
        one, two = statistics.median(v1s) * 1e6, statistics.median(v2s) * 1e6
        span = f"{length}-{length + 3 * GUESSES}"
        print(f"{span:>9} {one:>11.0f} {two:>11.0f} {one / two:>5.2f}×", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
