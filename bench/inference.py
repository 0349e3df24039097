"""How fast the model serves: `make bench` (or `python bench/inference.py [--data-dir DIR]`).

Measures, in one run, and prints one Markdown table of medians and ratios:
  1. torch eager vs ONNX Runtime, one session call at batch 1, 32 and 256;
  2. 64 concurrent callers (asyncio, as the server has them): one model call per request
     (torch eager, then ONNX) vs the micro-batched `Predictor`, in predictions per second;
  3. preprocessing cost per drawing: strokes as a browser sends them, and a 280×280 PNG;
  4. each architecture the trainer builds (server/training/model.py), freshly initialised: ONNX
     Runtime on one thread at batch 32, as the model worker runs it, against the seed widths.

The model is the newest in the data directory (its .onnx, and its .pt for torch); with none, a
freshly initialised default network is exported to a temporary file (speed does not depend on
weights).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image, ImageDraw

from server.config import DataLayout, resolve_data_dir
from server.serving.inference import Predictor, load_session, run_batch
from server.serving.model_files import latest_model, weights_path_for
from server.serving.preprocess import png_to_image, strokes_to_image
from server.training.export import export_onnx
from server.training.model import ARCHITECTURES, DEFAULT_ARCHITECTURE, Classifier

BATCH_SIZES = (1, 32, 256)
CALLERS = 64
REQUESTS_PER_CALLER = 40
REPEATS = 7

Row = tuple[str, str, str, str]


def median_seconds(run: Callable[[], object]) -> float:
    """Median time of one call to `run`, over REPEATS timings of at least 0.2 s each."""
    timer = timeit.Timer(run)
    number, _ = timer.autorange()
    return statistics.median(timer.repeat(REPEATS, number)) / number


def load_models(layout: DataLayout, workdir: Path) -> tuple[str, torch.nn.Module, Path]:
    """The torch module and ONNX file of the newest model (or of a fresh one)."""
    card = latest_model(layout)
    if card is not None:
        onnx_path = layout.model_path(card.version)
        weights = weights_path_for(onnx_path)
        if weights.is_file():
            model = Classifier(card.architecture)
            model.load_state_dict(torch.load(weights, weights_only=True))
            return f"{card.version} (trained, {card.architecture})", model.eval(), onnx_path
    model, onnx_path = fresh_model(DEFAULT_ARCHITECTURE, workdir)
    return f"fresh {DEFAULT_ARCHITECTURE} (untrained)", model, onnx_path


def fresh_model(architecture: str, workdir: Path) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = Classifier(architecture).eval()
    onnx_path = workdir / f"fresh-{architecture}.onnx"
    parity = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    export_onnx(model, onnx_path, parity_images=parity)
    return model, onnx_path


def torch_seconds(model: torch.nn.Module, tensor: torch.Tensor) -> tuple[float, int]:
    """Median time of one eager call, with torch's best thread count here (1 or the default):
    on a busy 2-core machine torch's spinning worker threads can make the default far slower."""
    timings = {}
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            timings[threads] = median_seconds(lambda: model(tensor))
    torch.set_num_threads(default_threads)
    best = min(timings, key=timings.__getitem__)
    return timings[best], best


def bench_sessions(model: torch.nn.Module, session: ort.InferenceSession) -> tuple[list[Row], int]:
    """Rows for each batch size, and torch's best thread count at batch 1."""
    rows: list[Row] = []
    best_threads = {}
    for size in BATCH_SIZES:
        images = np.random.default_rng(size).random((size, 28, 28), dtype=np.float32)
        torch_s, best_threads[size] = torch_seconds(model, torch.from_numpy(images).unsqueeze(1))
        onnx_s = median_seconds(lambda x=images: run_batch(session, x))
        name = f"torch eager ({best_threads[size]} thread(s)), batch {size}"
        rows.append(row(name, torch_s, size, "1.0×"))
        rows.append(row(f"ONNX Runtime, batch {size}", onnx_s, size, f"{torch_s / onnx_s:.1f}×"))
    return rows, best_threads[1]


async def serve_concurrently(predict: Callable[[np.ndarray], Awaitable[object]]) -> float:
    """Predictions per second when CALLERS callers each send REQUESTS_PER_CALLER in a row."""
    images = np.random.default_rng(1).random((CALLERS, 28, 28), dtype=np.float32)

    async def caller(image: np.ndarray) -> None:
        for _ in range(REQUESTS_PER_CALLER):
            await predict(image)

    started = time.perf_counter()
    await asyncio.gather(*(caller(image) for image in images))
    return CALLERS * REQUESTS_PER_CALLER / (time.perf_counter() - started)


async def bench_serving(model: torch.nn.Module, onnx_path: Path, torch_threads: int) -> list[Row]:
    """One model call per request (on one worker thread, as a plain server would) vs batching."""
    torch.set_num_threads(torch_threads)
    session = load_session(onnx_path)
    worker = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()

    def torch_one(image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(image)[None, None]).exp().numpy()

    async def torch_per_request(image: np.ndarray) -> object:
        return await loop.run_in_executor(worker, torch_one, image)

    async def onnx_per_request(image: np.ndarray) -> object:
        return await loop.run_in_executor(worker, run_batch, session, image[None])

    async with Predictor(onnx_path, "bench", max_batch=CALLERS) as predictor:
        modes = {
            f"torch eager ({torch_threads} thread(s)), one call per request": torch_per_request,
            "ONNX Runtime, one call per request": onnx_per_request,
            "ONNX Runtime, micro-batched Predictor": predictor.predict,
        }
        rates: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(REPEATS):  # interleaved, so a noisy neighbour hurts every mode alike
            for name, predict in modes.items():
                rates[name].append(await serve_concurrently(predict))
    worker.shutdown()

    baseline = statistics.median(next(iter(rates.values())))  # torch eager, one call per request
    rows: list[Row] = []
    for name, samples in rates.items():
        rate = statistics.median(samples)
        rows.append(
            (
                f"{CALLERS} concurrent callers: {name}",
                f"{1e6 / rate:.1f} µs / prediction",
                f"{rate:,.0f} predictions/s",
                f"{rate / baseline:.1f}×",
            )
        )
    return rows


def browser_strokes() -> list[list[list[float]]]:
    """A 4 as a browser sends it: two strokes sampled every few pixels on a 280×280 canvas."""
    down = np.linspace(0, 1, 40)
    first = [[70 + 40 * t, 40 + 140 * t] for t in down] + [[110 + 120 * t, 180] for t in down]
    second = [[190 - 5 * t, 60 + 190 * t] for t in np.linspace(0, 1, 50)]
    return [[[round(x, 1), round(y, 1)] for x, y in stroke] for stroke in (first, second)]


def canvas_png(strokes: list[list[list[float]]]) -> bytes:
    """The same drawing exported by a canvas: 280×280 RGBA, black ink on transparent."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        draw.line([tuple(point) for point in stroke], fill=(0, 0, 0, 255), width=18, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bench_preprocessing() -> list[Row]:
    strokes = browser_strokes()
    png = canvas_png(strokes)
    points = sum(map(len, strokes))
    strokes_s = median_seconds(lambda: strokes_to_image(strokes))
    png_s = median_seconds(lambda: png_to_image(png))
    return [
        row(f"preprocess strokes ({len(strokes)} strokes, {points} points)", strokes_s, 1, ""),
        row(f"preprocess 280×280 RGBA PNG ({len(png) // 1024} KiB)", png_s, 1, ""),
    ]


def bench_architectures(workdir: Path) -> list[Row]:
    """ONNX Runtime's time per image for each architecture, timed in turns, against the seed
    widths (the first): what a wider network costs the model worker."""
    size = 32
    images = np.random.default_rng(size).random((size, 28, 28), dtype=np.float32)
    sessions = {}
    for architecture in ARCHITECTURES:
        model, onnx_path = fresh_model(architecture, workdir)
        parameters = sum(p.numel() for p in model.parameters())
        sessions[f"{architecture} ({parameters:,} parameters)"] = load_session(onnx_path, threads=1)
    timings: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(REPEATS):  # in turns, so a noisy neighbour hurts each alike
        for name, session in sessions.items():
            call = timeit.Timer(lambda s=session: run_batch(s, images))
            number, _ = call.autorange()
            timings[name].append(call.timeit(number) / number)
    medians = {name: statistics.median(samples) for name, samples in timings.items()}
    seed = next(iter(medians.values()))
    return [
        row(
            f"ONNX Runtime, 1 thread, batch {size}: fresh {name}",
            seconds,
            size,
            f"{seconds / seed:.2f}×",
        )
        for name, seconds in medians.items()
    ]


def row(name: str, seconds: float, images: int, ratio: str) -> Row:
    per_second = f"{images / seconds:,.0f} images/s"
    return (name, f"{seconds * 1e3:.3f} ms / call", per_second, ratio)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data directory (default: $FTM_DATA_DIR or ./data)")
    args = parser.parse_args()
    layout = DataLayout(resolve_data_dir(args.data_dir))

    with tempfile.TemporaryDirectory() as workdir:
        name, model, onnx_path = load_models(layout, Path(workdir))
        session = load_session(onnx_path)
        print(
            f"model: {name}; {os.cpu_count()} CPUs; torch {torch.__version__} "
            f"(default {torch.get_num_threads()} threads; rows use the faster of 1 and that), "
            f"onnxruntime {ort.__version__}; "
            f"medians of {REPEATS} timings",
            file=sys.stderr,
        )
        rows, torch_threads = bench_sessions(model, session)
        rows += asyncio.run(bench_serving(model, onnx_path, torch_threads))
        rows += bench_preprocessing()
        rows += bench_architectures(Path(workdir))

    print("| measurement | median | throughput | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
