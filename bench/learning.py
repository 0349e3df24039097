"""Learning evidence: one round of retraining, recipe by recipe, beside round 0.

    .venv/bin/python bench/learning.py [--data-dir DATA] [--epochs 3] [--recipes balanced ...]

1. Round 0 is trained on MNIST training digits 0–39999 only (`--players-from`, 40000); the
   newest model in DATA/models is used if its card says so, else one is trained
   (`--round0-epochs`, 12; `--architecture`, the trainer's default network, server/training/
   model.py; fine-tunes keep round 0's). So round 0 sees two thirds of MNIST's training digits,
   not all of them as the server's model does (the rest are the players'), and is a little
   weaker for it (README, Benchmarks). `--seed` draws the players and seeds the fine-tune, not
   round 0.
2. The players are writers round 0 never saw: MNIST training digits 40000–59999. Why 20,000: the
   ordinary-drawing yardstick below is judged per digit, "no class falls by more than 1 point", and
   round 0 is 100% on it, so its resolution is one drawing in a digit's count. With 10,000 players
   (`--players-from 50000`) that left ~1,150 held out, ~100–140 a digit: one lost drawing was a
   point, and the noise of fine-tuning itself (a drawing or two a digit) failed the target. 20,000
   players hold out ~3× as many (~300 a digit, a point is ~3 drawings) and give ~3× the replay pool
   (the extra 10,000 are all ordinary: `--foolers` stays 5,000). All 10,000 MNIST test digits stay
   the MNIST yardstick, untouched: no player drawing comes from them and nothing is chosen by them.
   (Players drawn from MNIST test would leave only part of it as the yardstick, and its harder
   first half put round 0 itself below the 99.0% target.) Retraining uses the same MNIST digits
   0–39999 as round 0, so the players' digits enter training only as their drawings. MNIST ships no
   writer ids, so the players' trained-on and held-out drawings may share writers, as in the game.
   - Foolings: `--foolers` (5,000) of the players' digits as written, else rotated, sheared,
     squashed, thickened or thinned only as far as needed to fool round 0 (players stop once
     the model is fooled), or drawn as seven-segment strokes. Every drawing goes through
     `server.serving.preprocess` as a drawing on the canvas would; only those round 0 gets
     wrong are kept.
   - Ordinary drawings: the players' other digits (the 15,000 not distorted, and the ones whose
     attempt was drawn as seven-segment strokes instead, so no attempt used them), undistorted,
     that round 0 reads right, with their label: the submissions the game stores as "the model
     got it". Round 0 is 100% on them by construction, so on this set a class change counts
     drawings lost; the report gives each class's count beside it.
   Both are split by the game's own held-out rule (content hash, `game_rules.heldout`) at the
   game's `[retrain] heldout_fraction` (20%; `--heldout-percent`): the rest is the round's
   training data, the held-out part is judged.
3. Retrains once per recipe (server/learning/recipes.py) through the real pipeline (the trainer
   process, ONNX export, the gate) in a scratch copy of the data directory.
4. Prints per recipe: held-out foolings, MNIST test (all 10,000) and held-out ordinary drawings
   with per-class accuracy (and count) and the worst class change against round 0 (in points
   and in drawings), and the gate's verdict.

Choosing a recipe: `--validation-percent 25` keeps a quarter of the players' drawings to train
on (foolings and ordinary drawings alike, by the same content-hash rule with another salt) out
of training as a validation slice, and prints its table first; recipes are chosen on it, and
the test sets above are only reported. Without it (the default) recipes train on all of the
players' drawings not held out, as the game does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from game_rules.heldout import content_key, held_out, percent_of
from server.config import DataLayout, load_rules, resolve_data_dir
from server.learning.gate import GateSettings, accuracy, class_accuracy
from server.learning.jobs.examples import ExampleSet
from server.learning.jobs.job import TrainingJob
from server.learning.jobs.process import TrainerProcess
from server.learning.jobs.report import ProgressMessage
from server.learning.recipes import RECIPES, RETRAIN_EPOCHS
from server.mnist import load_mnist
from server.serving.inference import load_session, run_batch
from server.serving.model_files import ModelCard, latest_model, weights_path_for
from server.serving.preprocess import strokes_to_image, to_mnist
from server.training.model import ARCHITECTURES, DEFAULT_ARCHITECTURE
from server.training.pipeline import build_model
from server.training.train import TrainConfig

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


def as_drawn(digit: np.ndarray) -> np.ndarray:
    """uint8 MNIST digit → preprocessed like a drawing on the canvas, undistorted."""
    return to_mnist(digit.astype(np.float32))


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
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Try `count` drawings; keep, for each, the mildest rung of its ladder that fools the model.

    Players stop distorting once the model is fooled, so the kept drawings sit just past the
    model's decision boundary, as real adversarial drawings do. Also returns the positions of
    the digits no attempt used (seven-segment attempts draw a digit of their own).
    """
    rng = np.random.default_rng(seed)
    kinds = [*LADDERS, SEVEN_SEGMENT]
    ladders: list[list[np.ndarray]] = []
    truth: list[int] = []
    chosen: list[str] = []
    unused: list[int] = []
    for index in rng.permutation(len(labels))[:count]:
        kind = str(rng.choice(kinds))
        if kind == SEVEN_SEGMENT:
            unused.append(int(index))
            digit = int(rng.integers(10))
            ladders.append([seven_segment(digit, rng)])
        else:
            digit, flip = int(labels[index]), bool(rng.random() < 0.5)
            rungs = [distort(images[index], kind, s, flip) for s in LADDERS[kind][1]]
            ladders.append([as_drawn(images[index]), *rungs])
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
    return np.stack(kept), np.array(kept_labels), kept_kinds, np.array(unused, dtype=int)


VALIDATION_SALT = ":validation"


def ensure_round0(data_dir: Path, epochs: int, players_from: int, architecture: str) -> ModelCard:
    """The newest model if it is `architecture` trained on MNIST training digits
    0..players_from-1 only, else a new one trained so (the players' digits must be new to it)."""
    layout = DataLayout(data_dir)
    card = latest_model(layout)
    if card is None:
        print(
            f"no round-0 model yet: training one on MNIST train 0–{players_from - 1}, "
            f"{epochs} epochs, {architecture}",
            file=sys.stderr,
        )
        config = TrainConfig(
            architecture=architecture,
            epochs=epochs,
            train_limit=players_from,
            show_progress=False,
        )
        card = build_model(data_dir, config)
    if card.metrics.get("config", {}).get("train_limit") != players_from:
        sys.exit(
            f"round-0 model {card.version} was not trained on MNIST train 0–{players_from - 1} "
            "only, so the players' digits would not be new to it: use a data directory without "
            "models (this script trains one), or the --players-from it was trained with"
        )
    if card.architecture != architecture:
        sys.exit(
            f"round-0 model {card.version} is {card.architecture}, not {architecture}: use a "
            "data directory of its own for each architecture, or --architecture "
            f"{card.architecture}"
        )
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


def split(examples: ExampleSet, percent: int, salt: str = "") -> tuple[ExampleSet, ExampleSet]:
    """The game's held-out rule on these drawings: (to train on, held out). A `salt` makes the
    same rule pick a different, independent share (the validation slice)."""
    keys = [content_key(image) + salt for image in examples.images]
    held = np.array(held_out(keys, percent))
    return examples.where(~held), examples.where(held)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--players-from",
        type=int,
        default=40000,
        help="MNIST training digits from here on are the players'; round 0 trains on the rest",
    )
    parser.add_argument("--foolers", type=int, default=5000, help="digits players distort")
    parser.add_argument(
        "--epochs", type=int, default=RETRAIN_EPOCHS, help="fine-tuning epochs (the server's)"
    )
    parser.add_argument("--scratch-epochs", type=int, default=4)
    parser.add_argument("--round0-epochs", type=int, default=12, help="if round 0 is trained")
    parser.add_argument(
        "--architecture",
        default=DEFAULT_ARCHITECTURE,
        choices=list(ARCHITECTURES),
        help="round 0's network (fine-tunes keep it)",
    )
    parser.add_argument(
        "--heldout-percent", type=int, default=None, help="default: the rules' heldout_fraction"
    )
    parser.add_argument(
        "--validation-percent",
        type=int,
        default=0,
        help="of the players' drawings to train on, the share kept out as a validation slice",
    )
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="a directory to copy each recipe's model into")
    args = parser.parse_args()

    data_dir = resolve_data_dir(args.data_dir)
    players_from = args.players_from
    if not 0 < players_from < 60000 - args.foolers:  # MNIST has 60,000 training digits
        parser.error("--players-from must leave round 0 digits and the players more than --foolers")
    round0 = ensure_round0(data_dir, args.round0_epochs, players_from, args.architecture)
    percent = args.heldout_percent
    if percent is None:
        percent = percent_of(load_rules(DataLayout(data_dir)).retrain.heldout_fraction)
    mnist = load_mnist(data_dir)
    session0 = load_session(DataLayout(data_dir).model_path(round0.version))

    started = time.monotonic()
    pool_images, pool_labels = (
        mnist.train_images[players_from:],
        mnist.train_labels[players_from:],
    )
    order = np.random.default_rng(args.seed).permutation(len(pool_labels))
    fooler_idx, ordinary_idx = order[: args.foolers], order[args.foolers :]
    images, labels, kinds, unused = mildest_fooling(
        session0, pool_images[fooler_idx], pool_labels[fooler_idx], len(fooler_idx), args.seed
    )
    ordinary_idx = np.concatenate([ordinary_idx, fooler_idx[unused]])
    foolings = ExampleSet.of(images, labels, rounds=[1] * len(labels))
    plain = np.stack([as_drawn(image) for image in pool_images[ordinary_idx]])
    read_right = run_batch(session0, plain).argmax(axis=1) == pool_labels[ordinary_idx]
    ordinary = ExampleSet.of(
        plain[read_right], pool_labels[ordinary_idx][read_right], fooled=[False] * read_right.sum()
    )
    fool_train, fool_held = split(foolings, percent)
    ordinary_train, ordinary_held = split(ordinary, percent)
    fool_train, fool_valid = split(fool_train, args.validation_percent, VALIDATION_SALT)
    ordinary_train, ordinary_valid = split(ordinary_train, args.validation_percent, VALIDATION_SALT)
    print(
        f"{len(fooler_idx)} digits distorted: {len(foolings)} fool {round0.version} "
        f"({len(fool_train)} to train on, {len(fool_held)} held out); {len(ordinary)} of "
        f"{len(ordinary_idx)} ordinary drawings read right ({len(ordinary_train)} replayed, "
        f"{len(ordinary_held)} held out); validation slice {len(fool_valid)} foolings, "
        f"{len(ordinary_valid)} ordinary; foolings to train on per digit "
        f"{np.bincount(fool_train.labels, minlength=10).tolist()}, by kind "
        f"{dict(Counter(kinds).most_common())} "
        f"({time.monotonic() - started:.0f} s)",
        file=sys.stderr,
    )
    validation = {
        "validation foolings": (fool_valid.images, fool_valid.labels),
        "validation ordinary drawings": (ordinary_valid.images, ordinary_valid.labels),
    }
    sets = {
        "held-out foolings": (fool_held.images, fool_held.labels),
        "MNIST test": (mnist.test_images, mnist.test_labels),
        "held-out ordinary drawings": (ordinary_held.images, ordinary_held.labels),
    }
    columns = [Column(round0.version, "round 0", session0, "—", 0.0)]
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        for name in args.recipes:
            work = scratch_copy(data_dir, round0, Path(tmp) / name)
            job = TrainingJob(
                data_dir=str(work.root),
                parent=round0.version,
                extra_path=str((fool_train + ordinary_train).save(Path(tmp) / "extra.npz")),
                heldout_path=str((fool_held + ordinary_held).save(Path(tmp) / "heldout.npz")),
                threads=args.threads,
                epochs=args.scratch_epochs if RECIPES[name].from_scratch else args.epochs,
                seed=args.seed,
                train_limit=players_from,
                recipe=name,
                gate=GateSettings(),
            )
            started = time.monotonic()
            outcome = asyncio.run(TrainerProcess(job, Path(tmp) / f"{name}.json").run(show))
            seconds = time.monotonic() - started
            print(
                f"\n{name}: {outcome.status}: {outcome.reason} ({seconds:.0f} s)", file=sys.stderr
            )
            if outcome.result is None:
                print(outcome.stderr_tail, file=sys.stderr)
                return 1
            session = load_session(outcome.result.model_path)
            if args.keep:
                keep = Path(args.keep) / name
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy2(outcome.result.model_path, keep)
            columns.append(Column(outcome.result.version, name, session, outcome.status, seconds))
    if args.validation_percent:
        print("Validation (recipes are chosen here):\n\n" + report(columns, validation) + "\n")
        print("Test:\n")
    print(report(columns, sets))
    return 0


def show(p: ProgressMessage) -> None:
    if p.loss is None or p.eta_seconds is None:  # loading or exporting: nothing to count yet
        print(f"\r  {p.phase}   ", end="", file=sys.stderr, flush=True)
        return
    print(
        f"\r  epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} loss {p.loss:.4f} "
        f"eta {p.eta_seconds:.0f} s   ",
        end="",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class Column:
    version: str
    recipe: str
    session: object
    gate: str
    seconds: float


def report(columns: list[Column], sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """One row per measurement, one column per model; class changes are against round 0."""
    header = [f"{c.recipe} ({c.version})" for c in columns]
    lines = [
        "| measurement | " + " | ".join(header) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, (x, y) in sets.items():
        if not len(y):
            continue
        counts = np.bincount(y, minlength=10)
        base = class_accuracy(columns[0].session, x, y)
        overall = [accuracy(c.session, x, y) for c in columns]
        changes = [class_accuracy(c.session, x, y) - base for c in columns]
        worst = [int(np.nanargmin(change)) for change in changes]
        lines.append(f"| {name} ({len(y)}) | " + " | ".join(f"{a:.2%}" for a in overall) + " |")
        lines.append(
            f"| {name}: worst class change (drawings) | "
            + " | ".join(
                "—"
                if i == 0
                else f"{100 * change[w]:+.1f} pt ({w}: {round(change[w] * counts[w]):+d} "
                f"of {counts[w]})"
                for i, (change, w) in enumerate(zip(changes, worst, strict=True))
            )
            + " |"
        )
        for digit in range(10):
            per_class = [class_accuracy(c.session, x, y)[digit] for c in columns]
            lines.append(
                f"| {name}: digit {digit} ({counts[digit]}) | "
                + " | ".join(f"{a:.1%}" for a in per_class)
                + " |"
            )
    lines.append("| gate | " + " | ".join(c.gate for c in columns) + " |")
    lines.append(
        "| retrain wall time | — | " + " | ".join(f"{c.seconds:.0f} s" for c in columns[1:]) + " |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
