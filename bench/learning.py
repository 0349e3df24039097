"""Learning evidence: does one round of retraining make the model harder to fool?

    .venv/bin/python bench/learning.py [--data-dir data] [--epochs 4] [--threads 2]

1. Takes the round-0 model (the newest in DATA/models; trains one with `ensure-model` if none).
2. Builds drawings that fool it, as players would: MNIST digits rotated, sheared, squashed,
   thickened or thinned — each only as far as needed to fool the model (the mildest rung of a
   ladder of strengths) — and digits drawn as seven-segment strokes, nothing like MNIST's pens.
   Every drawing goes through `server.serving.preprocess` exactly as a drawing on the canvas would,
   and only the ones the round-0 model gets wrong are kept. The sources are MNIST *training* digits,
   so the MNIST test set stays untouched by the adversarial data.
3. Splits them in two halves, retrains on one half through the real pipeline — the trainer
   process fine-tunes from the round-0 weights, exports ONNX, runs the gate with the other half
   as the held-out set — in a scratch copy of the data directory (the shared registry is left
   alone).
4. Prints round-0 vs round-1 accuracy on the held-out half, the trained half and MNIST test as a
   Markdown table, with a breakdown per kind of drawing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from server.config import DataLayout, resolve_data_dir
from server.learning.gate import GateSettings, accuracy
from server.learning.jobs.examples import ExampleSet
from server.learning.jobs.job import TrainingJob
from server.learning.jobs.process import TrainerProcess
from server.learning.jobs.report import ProgressMessage
from server.mnist import load_mnist
from server.serving.inference import load_session, run_batch
from server.serving.model_files import ModelCard, latest_model, weights_path_for
from server.serving.preprocess import strokes_to_image, to_mnist

UPSCALE = 4  # transforms work on a 112×112 copy so that rotation and morphology stay smooth

# --- distortions of MNIST digits --------------------------------------------------------------
# Each takes a strength (one rung of its ladder, mildest first) and a direction (flip).

Distortion = Callable[[Image.Image, float, bool], Image.Image]


def rotate(image: Image.Image, degrees: float, flip: bool) -> Image.Image:
    angle = -degrees if flip else degrees
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)


def shear(image: Image.Image, k: float, flip: bool) -> Image.Image:
    k = -k if flip else k
    side = image.width
    wide = Image.new("L", (int(side * (1 + abs(k))), side))
    wide.paste(image, (int(side * abs(k) / 2), 0))
    return wide.transform(
        wide.size, Image.Transform.AFFINE, (1, k, -k * side / 2, 0, 1, 0), Image.Resampling.BILINEAR
    )


def squash(image: Image.Image, factor: float, flip: bool) -> Image.Image:
    if flip:
        return image.resize((image.width, max(4, int(image.height * factor))))
    return image.resize((max(4, int(image.width * factor)), image.height))


def thicken(image: Image.Image, size: float, flip: bool) -> Image.Image:
    return image.filter(ImageFilter.MaxFilter(int(size)))


def thin(image: Image.Image, size: float, flip: bool) -> Image.Image:
    return image.filter(ImageFilter.MinFilter(int(size)))


LADDERS: dict[str, tuple[Distortion, tuple[float, ...]]] = {
    "rotated": (rotate, (20, 30, 40, 50)),
    "sheared": (shear, (0.4, 0.6, 0.8, 1.0)),
    "squashed": (squash, (0.7, 0.6, 0.5, 0.4)),
    "thickened": (thicken, (7, 9, 11, 13)),
    "thinned": (thin, (3, 5, 7, 7)),
}
SEVEN_SEGMENT = "seven-segment strokes"


def distort(digit: np.ndarray, kind: str, strength: float, flip: bool) -> np.ndarray:
    """uint8 MNIST digit → distorted → preprocessed exactly like a drawing on the canvas."""
    image = Image.fromarray(digit).resize((28 * UPSCALE, 28 * UPSCALE), Image.Resampling.BILINEAR)
    function, _ = LADDERS[kind]
    ink = np.asarray(function(image, strength, flip), dtype=np.float32)
    if ink.max() < 64:  # thinning erased the digit: keep the mildest version instead
        ink = np.asarray(image, dtype=np.float32)
    return to_mnist(ink)


# --- seven-segment digits, drawn as strokes -----------------------------------------------------

#      a
#    f   b
#      g
#    e   c
#      d
SEGMENT_ENDS = {
    "a": ((0, 0), (1, 0)),
    "b": ((1, 0), (1, 1)),
    "c": ((1, 1), (1, 2)),
    "d": ((0, 2), (1, 2)),
    "e": ((0, 1), (0, 2)),
    "f": ((0, 0), (0, 1)),
    "g": ((0, 1), (1, 1)),
}
SEGMENTS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]


def seven_segment(digit: int, rng: np.random.Generator) -> np.ndarray:
    """A digit as a calculator shows it: one stroke per segment, slanted and a little shaky."""
    slant = rng.uniform(-0.3, 0.3)
    width = rng.uniform(0.8, 1.3)
    strokes = []
    for segment in SEGMENTS[digit]:
        (x0, y0), (x1, y1) = SEGMENT_ENDS[segment]
        line = []
        for t in np.linspace(0, 1, 6):
            x = (x0 + (x1 - x0) * t) * width
            y = y0 + (y1 - y0) * t
            line.append(
                [100 * (x + slant * (2 - y)) + rng.normal(0, 2), 100 * y + rng.normal(0, 2)]
            )
        strokes.append(line)
    return strokes_to_image(strokes)


# --- the adversarial set ------------------------------------------------------------------------


def mildest_fooling(
    session: object, images: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Try `count` drawings; keep, for each, the mildest rung of its ladder that fools the model.

    Players stop distorting once the model is fooled, so the kept drawings sit just past the
    model's decision boundary, as real adversarial drawings do.
    """
    rng = np.random.default_rng(seed)
    kinds = [*LADDERS, SEVEN_SEGMENT]
    ladders: list[list[np.ndarray]] = []
    truth: list[int] = []
    chosen: list[str] = []
    for index in rng.permutation(len(labels))[:count]:
        kind = str(rng.choice(kinds))
        if kind == SEVEN_SEGMENT:
            digit = int(rng.integers(10))
            ladders.append([seven_segment(digit, rng)])
        else:
            digit, flip = int(labels[index]), bool(rng.random() < 0.5)
            ladders.append([distort(images[index], kind, s, flip) for s in LADDERS[kind][1]])
        truth.append(digit)
        chosen.append(kind)
    flat = np.stack([image for ladder in ladders for image in ladder])
    wrong = run_batch(session, flat).argmax(axis=1) != np.repeat(
        truth, [len(rungs) for rungs in ladders]
    )
    kept, kept_labels, kept_kinds = [], [], []
    start = 0
    for ladder, digit, kind in zip(ladders, truth, chosen, strict=True):
        rungs = wrong[start : start + len(ladder)]
        if rungs.any():
            kept.append(ladder[int(rungs.argmax())])
            kept_labels.append(digit)
            kept_kinds.append(kind)
        start += len(ladder)
    return np.stack(kept), np.array(kept_labels), kept_kinds


def ensure_round0(data_dir: Path) -> ModelCard:
    layout = DataLayout(data_dir)
    card = latest_model(layout)
    if card is None:
        print("no round-0 model yet: training one (`fool-the-model ensure-model`)", file=sys.stderr)
        command = [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "ensure-model"]
        subprocess.run(command, check=True)
        card = latest_model(layout)
    assert card is not None
    if not weights_path_for(layout.model_path(card.version)).is_file():
        sys.exit(f"round-0 model {card.version} has no weights (.pt) to fine-tune from")
    return card


def scratch_copy(data_dir: Path, card: ModelCard, root: Path) -> DataLayout:
    """A data directory holding only the round-0 model and a link to the MNIST cache."""
    source, copy = DataLayout(data_dir), DataLayout(root)
    copy.models_dir.mkdir(parents=True)
    copy.mnist_dir.symlink_to(source.mnist_dir.resolve())
    for path in (source.model_path(card.version), source.model_card_path(card.version)):
        shutil.copy2(path, copy.models_dir / path.name)
    weights = weights_path_for(source.model_path(card.version))
    shutil.copy2(weights, copy.models_dir / weights.name)
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--candidates", type=int, default=8000, help="drawings to try")
    parser.add_argument("--keep", type=int, default=4000, help="fooling drawings to keep at most")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-limit", type=int, default=None, help="MNIST training digits (default: all)"
    )
    args = parser.parse_args()

    data_dir = resolve_data_dir(args.data_dir)
    round0 = ensure_round0(data_dir)
    mnist = load_mnist(data_dir)
    session0 = load_session(DataLayout(data_dir).model_path(round0.version))

    started = time.monotonic()
    images, labels, kinds = mildest_fooling(
        session0, mnist.train_images, mnist.train_labels, args.candidates, args.seed
    )
    keep = np.random.default_rng(args.seed).permutation(len(labels))[: args.keep]
    half = len(keep) // 2
    train_idx, held_idx = keep[:half], keep[half:]
    print(
        f"{args.candidates} drawings tried, {len(labels)} fool {round0.version}; keeping "
        f"{len(keep)}: {half} to train on, {len(held_idx)} held out "
        f"({time.monotonic() - started:.0f} s)",
        file=sys.stderr,
    )

    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        work = scratch_copy(data_dir, round0, Path(tmp) / "data")
        extra = ExampleSet.of(images[train_idx], labels[train_idx])
        heldout = ExampleSet.of(images[held_idx], labels[held_idx], rounds=[1] * len(held_idx))
        job = TrainingJob(
            data_dir=str(work.root),
            parent=round0.version,
            extra_path=str(extra.save(Path(tmp) / "extra.npz")),
            heldout_path=str(heldout.save(Path(tmp) / "heldout.npz")),
            threads=args.threads,
            epochs=args.epochs,
            lr=args.lr,
            seed=args.seed,
            train_limit=args.train_limit,
            gate=GateSettings(),
        )

        def show(p: ProgressMessage) -> None:
            print(
                f"\r  epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} loss {p.loss:.4f} "
                f"acc {p.accuracy:.4f} eta {p.eta_seconds:.0f} s   ",
                end="",
                file=sys.stderr,
                flush=True,
            )

        started = time.monotonic()
        outcome = asyncio.run(TrainerProcess(job, Path(tmp) / "job.json").run(show))
        print(
            f"\n{outcome.status}: {outcome.reason} ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
        )
        if outcome.result is None:
            print(outcome.stderr_tail, file=sys.stderr)
            return 1
        session1 = load_session(outcome.result.model_path)
        print(
            report(
                round0.version,
                outcome.result.version,
                session0,
                session1,
                images,
                labels,
                kinds,
                train_idx,
                held_idx,
                mnist.test_images,
                mnist.test_labels,
            )
        )
        print(f"\nGate: **{outcome.status}** — {outcome.result.gate['reason']}")
    return 0


def report(
    v0: str,
    v1: str,
    session0: object,
    session1: object,
    images: np.ndarray,
    labels: np.ndarray,
    kinds: list[str],
    train_idx: np.ndarray,
    held_idx: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
) -> str:
    rows = [
        ("adversarial, held out (never trained on)", images[held_idx], labels[held_idx]),
        ("adversarial, trained-on half", images[train_idx], labels[train_idx]),
        ("MNIST test", test_images, test_labels),
    ]
    lines = [
        f"| set | drawings | round 0 ({v0}) | round 1 ({v1}) |",
        "|---|---:|---:|---:|",
    ]
    for name, x, y in rows:
        a0, a1 = accuracy(session0, x, y), accuracy(session1, x, y)
        lines.append(f"| {name} | {len(y)} | {a0:.2%} | {a1:.2%} |")
    lines += [
        "",
        f"| held-out drawings by kind | drawings | round 0 ({v0}) | round 1 ({v1}) |",
        "|---|---:|---:|---:|",
    ]
    held_kinds = np.array(kinds)[held_idx]
    for kind in sorted(set(held_kinds), key=lambda k: -int((held_kinds == k).sum())):
        pick = held_idx[held_kinds == kind]
        if len(pick) >= 10:
            a0 = accuracy(session0, images[pick], labels[pick])
            a1 = accuracy(session1, images[pick], labels[pick])
            lines.append(f"| {kind} | {len(pick)} | {a0:.2%} | {a1:.2%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
