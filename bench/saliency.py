"""What a heat map costs: `python bench/saliency.py [--data-dir DIR] [--rounds N]`.

Measures, in one run, side by side (each round times one of each, in alternating order), and
prints one Markdown table of p50/p99 milliseconds and their ratio to a plain guess:
  1. in process: one ONNX run on one image (a plain guess) vs `saliency.explain` (the input and
     its occluded copies, one per 6×6 patch over ink, in one batch, then the map);
  2. through the model worker, as the server asks: `Predictor.predict_strokes` vs
     `Predictor.explain` on the same strokes (drawing, pipe and pickling included).

The model is the newest in the data directory; with none there, a freshly initialised
network (server/training/model.py) exported to a temporary file (speed does not depend on the
weights).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.config import DataLayout, resolve_data_dir
from server.serving.inference import Predictor, load_session, run_batch
from server.serving.model_files import latest_model
from server.serving.preprocess import strokes_to_image
from server.serving.saliency import CORNERS, explain, inked

# A hand-drawn 7 with a crossbar, in canvas pixels (as the browser sends it).
SEVEN = [[[10.0, 10.0], [60.0, 12.0], [30.0, 80.0]], [[20.0, 45.0], [50.0, 44.0]]]


def percentiles(seconds: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    return float(p50), float(p99)


async def side_by_side(
    guess: Callable[[], Awaitable[object]], heat: Callable[[], Awaitable[object]], rounds: int
) -> tuple[list[float], list[float]]:
    guesses: list[float] = []
    maps: list[float] = []
    for index in range(rounds):
        pair = [(guess, guesses), (heat, maps)]
        for run, times in pair if index % 2 else reversed(pair):
            started = time.perf_counter()
            await run()
            times.append(time.perf_counter() - started)
    return guesses, maps


def rows(where: str, guesses: list[float], maps: list[float]) -> list[str]:
    g50, g99 = percentiles(guesses)
    m50, m99 = percentiles(maps)
    return [
        f"| {where} | plain guess | {g50:.2f} | {g99:.2f} | 1× |",
        f"| {where} | heat map | {m50:.2f} | {m99:.2f} | {m50 / g50:.1f}× |",
    ]


async def at_once(run: Callable[[], object]) -> object:
    """A plain call as an awaitable, so in-process timings go through `side_by_side` too."""
    return run()


async def through_worker(model: Path, version: str, rounds: int) -> tuple[list[float], list[float]]:
    async with Predictor(model, version, max_wait_ms=0, threads=1) as predictor:
        for _ in range(10):  # warm the pipe and both batch shapes
            await predictor.predict_strokes(SEVEN)
            await predictor.explain("strokes", SEVEN)
        return await side_by_side(
            lambda: predictor.predict_strokes(SEVEN),
            lambda: predictor.explain("strokes", SEVEN),
            rounds,
        )


def fresh_model(workdir: Path) -> Path:
    """An untrained default network as ONNX, made as bench/inference.py makes it (torch is
    imported only here: the bench, not the server)."""
    from inference import fresh_model as untrained

    from server.training.model import DEFAULT_ARCHITECTURE

    return untrained(DEFAULT_ARCHITECTURE, workdir)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data directory (default: $FTM_DATA_DIR or ./data)")
    parser.add_argument("--rounds", type=int, default=300, help="timings of each (default 300)")
    args = parser.parse_args()
    layout = DataLayout(resolve_data_dir(args.data_dir))
    card = latest_model(layout)
    with tempfile.TemporaryDirectory() as workdir:
        if card is None:
            version, model = "fresh (untrained)", fresh_model(Path(workdir))
        else:
            version, model = card.version, layout.model_path(card.version)
        measure(model, version, args.rounds)


def measure(model: Path, version: str, rounds: int) -> None:
    session = load_session(model, threads=1)
    image = strokes_to_image(SEVEN)
    for _ in range(10):
        explain(image, lambda batch: run_batch(session, batch))
    in_process = asyncio.run(
        side_by_side(
            lambda: at_once(lambda: run_batch(session, image[None])),
            lambda: at_once(lambda: explain(image, lambda batch: run_batch(session, batch))),
            rounds,
        )
    )
    worker = asyncio.run(through_worker(model, version, rounds))
    batch = 1 + len(inked(image))
    print(f"Model {version}; this 7's map is 1 run on {batch} images (at most {1 + len(CORNERS)}).")
    print(f"{rounds} timings of each, alternating.")
    print()
    print("| where | request | p50 ms | p99 ms | p50 vs guess |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows("in process", *in_process) + rows("model worker", *worker)))


if __name__ == "__main__":
    main()
