"""`fool-the-model`: one entry point, one subcommand per job.

Each subcommand imports its implementation lazily, so `serve` never pays for (or imports) torch
and `--help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from server.config import ConfigError, Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _fetch_data(args: argparse.Namespace, settings: Settings) -> int:
    from server.mnist import fetch_data_command

    return fetch_data_command(settings.data_dir)


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from server.training.pipeline import train_command

    return train_command(args, settings.data_dir)


def _ensure_model(args: argparse.Namespace, settings: Settings) -> int:
    from server.training.pipeline import ensure_model_command

    return ensure_model_command(settings.data_dir)


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from server.serving.evaluate import eval_command

    return eval_command(args.model, settings.data_dir)


def _predict(args: argparse.Namespace, settings: Settings) -> int:
    from server.serving.evaluate import predict_command

    return predict_command(args.image, args.model, settings.data_dir)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from server.app import serve_command

    return serve_command(settings)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from server.learning.cli import export_command

    return export_command(args, settings.layout)


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from server.learning.cli import models_command

    return models_command(args, settings.layout)


def _rounds(args: argparse.Namespace, settings: Settings) -> int:
    from server.learning.cli import rounds_command

    return rounds_command(args, settings.layout)


def _benchmark(args: argparse.Namespace, settings: Settings) -> int:
    from server.learning.cli import benchmark_command

    return benchmark_command(args, settings.layout)


def _trainer(args: argparse.Namespace, settings: Settings) -> int:
    from server.learning.jobs.worker import trainer_command

    return trainer_command(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fool-the-model",
        description="Fool the Model: draw digits that fool an MNIST CNN, validate others' "
        "drawings, "
        "and retrain the model on everything verified.",
    )
    parser.add_argument(
        "--data-dir",
        help="where the MNIST cache, models and database live (default: $FTM_DATA_DIR or ./data)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("fetch-data", _fetch_data, "download (once) and cache MNIST in the data directory")

    p = add("train", _train, "train the CNN on MNIST (plus verified drawings) and export ONNX")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 15)")
    p.add_argument("--quick", action="store_true", help="a small slice and one short epoch")
    p.add_argument("--seed", type=int, default=0, help="random seed (training is reproducible)")
    p.add_argument("--output", help="ONNX file to write (default: the next version in DATA/models)")

    add("ensure-model", _ensure_model, "train the first model only if the data directory has none")

    p = add("eval", _eval, "print MNIST test accuracy (overall and per class) of an ONNX model")
    p.add_argument("model", help="path to a .onnx file")

    p = add("predict", _predict, "predict the digit in a PNG image")
    p.add_argument("image", help="path to a PNG file (black-on-white or white-on-black)")
    p.add_argument("--model", help="ONNX model (default: the newest in DATA/models)")

    p = add("serve", _serve, "serve the game over HTTP and websockets")
    p.add_argument("--host", default=None, help="bind address (default: $FTM_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: $FTM_PORT or 8000)")

    p = add("export", _export, "export the drawings as a dataset (imagefolder, NDJSON, NumPy)")
    p.add_argument("--out", required=True, help="a new directory to write the export into")
    p.add_argument(
        "--format",
        choices=["imagefolder", "ndjson", "numpy", "all"],
        default="all",
        help="imagefolder: PNGs + metadata.jsonl per round; ndjson: Quick, Draw! strokes; "
        "numpy: arrays.npz (the data card README.md and votes.jsonl come with every format)",
    )
    p.add_argument("--round", type=int, action="append", help="only this round (repeatable)")
    p.add_argument(
        "--outcome",
        action="append",
        help="only this outcome (repeatable; default: every settled one): verified, relabelled, "
        "model_won, rejected_model_right, rejected_not_digit, pending, disputed",
    )

    p = add(
        "trainer",
        _trainer,
        "run training jobs queued by servers started with FTM_TRAINER=external (any machine)",
    )
    p.add_argument("--once", action="store_true", help="take one job, run it, then exit")
    p.add_argument("--poll-seconds", type=float, help="how often to look for a job (default: 2)")
    p.add_argument("--name", help="this worker's name on the jobs it takes (default: host:pid)")

    add("models", _models, "the model registry with each version's metrics, as a table")
    p = add(
        "benchmark",
        _benchmark,
        "score ONNX models (the game's, registered outside ones, and these files) on MNIST "
        "test and every round's verified drawings, as a table",
    )
    p.add_argument("models", nargs="*", help="more .onnx files honouring the model contract")
    add("rounds", _rounds, "every round with attempts, claims, verified fools, MER and vMER")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The one place the environment is read; `serve --host/--port` win over it.
        settings = Settings.from_env(
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
