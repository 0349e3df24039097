"""`fool-the-model`: one entry point, one subcommand per job.

Each subcommand imports its implementation lazily, so `serve` never pays for (or imports) torch
and `--help` stays instant.

A user's mistake never ends in a traceback: arguments and the environment are checked before any
work starts, and every error is one line on stderr. Exit status: 0 done, 1 the work failed (a
missing model, an unreachable database, a file that cannot be written), 2 a usage mistake (a bad
argument or `FTM_*` variable, a data directory that is not there).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from game_rules.consensus import ATTEMPT_OUTCOMES
from server.config import (
    ConfigError,
    Settings,
    installed_version,
    port_number,
    seconds,
    whole_number,
)

Handler = Callable[[argparse.Namespace, Settings], int]
T = TypeVar("T")

EXIT_STATUS = "exit status: 0 done, 1 the work failed, 2 a usage mistake (argument, FTM_* value)"
# The commands that may start a data directory; the others refuse one that does not exist.
STARTS_DATA_DIR = {"fetch-data", "ensure-model", "train"}


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake told in one line like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    """One of server/config.py's value parsers as an argparse type: the same rule and message
    for `--port` as for `FTM_PORT`."""

    def argument(value: str) -> T:
        try:
            return parse(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return argument


def seed(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number 0 or more, got {value!r}")
    return int(value)


def new_directory(value: str) -> Path:
    """A directory that does not exist yet and can be created."""
    path = Path(value).expanduser().absolute()
    if path.exists():
        raise argparse.ArgumentTypeError(f"{value} already exists: name a new directory")
    existing = next(parent for parent in path.parents if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot create {value}: {existing} is not a directory you can write to"
        )
    return path


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
    parser = Parser(
        prog="fool-the-model",
        description="Fool the Model: draw digits that fool an MNIST CNN, validate others' "
        "drawings, and retrain the model on everything verified.",
        epilog=EXIT_STATUS,
    )
    version = f"%(prog)s {installed_version()}"
    parser.add_argument("--version", action="version", version=version)
    parser.add_argument(
        "--data-dir",
        help="where the MNIST cache, models and database live (default: $FTM_DATA_DIR or ./data)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_STATUS)
        p.set_defaults(handler=handler)
        return p

    add("fetch-data", _fetch_data, "download (once) and cache MNIST in the data directory")

    p = add("train", _train, "train the CNN on MNIST (plus verified drawings) and export ONNX")
    p.add_argument(
        "--epochs", type=checked(whole_number), default=None, help="training epochs (default: 15)"
    )
    p.add_argument("--quick", action="store_true", help="a small slice and one short epoch")
    p.add_argument("--seed", type=seed, default=0, help="random seed (training is reproducible)")
    p.add_argument("--output", help="ONNX file to write (default: the next version in DATA/models)")

    add("ensure-model", _ensure_model, "train the first model only if the data directory has none")

    p = add("eval", _eval, "print MNIST test accuracy (overall and per class) of an ONNX model")
    p.add_argument("model", help="path to a .onnx file")

    p = add("predict", _predict, "predict the digit in a PNG image")
    p.add_argument("image", help="path to a PNG file (black-on-white or white-on-black)")
    p.add_argument("--model", help="ONNX model (default: the newest in DATA/models)")

    p = add("serve", _serve, "serve the game over HTTP and websockets")
    p.add_argument("--host", default=None, help="bind address (default: $FTM_HOST or 127.0.0.1)")
    p.add_argument(
        "--port", type=checked(port_number), default=None, help="port (default: $FTM_PORT or 8000)"
    )

    p = add("export", _export, "export the drawings as a dataset (imagefolder, NDJSON, NumPy)")
    p.add_argument(
        "--out", type=new_directory, required=True, help="a new directory to write the export into"
    )
    p.add_argument(
        "--format",
        choices=["imagefolder", "ndjson", "numpy", "all"],
        default="all",
        help="imagefolder: PNGs + metadata.jsonl per round; ndjson: Quick, Draw! strokes; "
        "numpy: arrays.npz (the data card README.md and votes.jsonl come with every format)",
    )
    p.add_argument(
        "--round", type=checked(whole_number), action="append", help="only this round (repeatable)"
    )
    p.add_argument(
        "--outcome",
        action="append",
        choices=[str(outcome) for outcome in ATTEMPT_OUTCOMES],
        metavar="OUTCOME",
        help=f"only this outcome (repeatable; default: every settled one): "
        f"{', '.join(ATTEMPT_OUTCOMES)}",
    )

    p = add(
        "trainer",
        _trainer,
        "run training jobs queued by servers started with FTM_TRAINER=external (any machine)",
    )
    p.add_argument("--once", action="store_true", help="take one job, run it, then exit")
    p.add_argument(
        "--poll-seconds", type=checked(seconds), help="how often to look for a job (default: 2)"
    )
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
    """Run `fool-the-model ARGV`; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version or a usage mistake, already told
        return int(done.code or 0)
    try:
        # The one place the environment is read; `serve --host/--port` win over it.
        settings = Settings.from_env(
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            create_data_dir=args.command in STARTS_DATA_DIR,
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        status = int(args.handler(args, settings))
        sys.stdout.flush()  # here, so a closed pipe is caught below rather than at exit
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`… | head`): nothing more to say, and nowhere to
        # say it; point stdout at /dev/null so the interpreter's last flush stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:  # a file or directory the work needed and could not have
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
