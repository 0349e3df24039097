"""`fool-the-model export`, `models`, `rounds` and `benchmark`: the learning loop's figures and
data from the command line, read straight from the game database (the server may be running)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from game_rules.heldout import percent_of
from server.config import DataLayout, load_rules
from server.learning.benchmark import NOTE, BenchmarkError, file_entrant, leaderboard, table
from server.learning.chart import heldout_accuracy, model_metrics, models_table, rounds_table
from server.learning.data import (
    EXPORT_FORMATS,
    export_to,
    player_drawings,
    round_stats,
)
from server.learning.export import ExportError
from server.serving.model_store import ModelStore, RegistryError
from server.storage import open_repository


def _open(layout: DataLayout) -> None:
    """Bring `layout`'s game database up to the current schema; a data directory without one
    is refused."""
    if layout.database_url == f"sqlite:///{layout.database}" and not layout.database.is_file():
        raise RegistryError(
            f"No game database at {layout.database}: start the server once (`fool-the-model "
            "serve`) or pass the right --data-dir."
        )

    async def migrate() -> None:
        repo = await open_repository(layout.database_url)
        await repo.close()

    asyncio.run(migrate())


def export_command(args: argparse.Namespace, layout: DataLayout) -> int:
    formats = list(EXPORT_FORMATS) if args.format == "all" else [args.format]
    try:
        _open(layout)
        summary = export_to(
            layout,
            Path(args.out),
            formats,
            rounds=args.round or None,
            outcomes=args.outcome or None,
            show_progress=True,
        )
    except (RegistryError, ExportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    splits = ", ".join(f"{name} {count}" for name, count in summary.splits.items())
    print(
        f"exported {summary.count} drawings ({splits}) and {summary.votes} votes to "
        f"{summary.directory} ({', '.join(formats)}); its README.md is the data card"
    )
    return 0


def models_command(args: argparse.Namespace, layout: DataLayout) -> int:
    try:
        _open(layout)
        model_store = ModelStore(layout)
        model_store.sync()
        models = model_store.models()
        percent = percent_of(load_rules(layout).retrain.heldout_fraction)
        heldout = player_drawings(layout.database_url, percent).heldout
        accuracies = {
            m.version: heldout_accuracy(layout, m.version, heldout) for m in models if m.accepted
        }
        metrics = model_metrics(models, round_stats(layout.database_url), accuracies)
    except (RegistryError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(models_table(models, metrics) if models else "No models registered yet.")
    return 0


def rounds_command(args: argparse.Namespace, layout: DataLayout) -> int:
    try:
        _open(layout)
        rounds = round_stats(layout.database_url)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(rounds_table(rounds) if rounds else "No rounds yet.")
    return 0


def benchmark_command(args: argparse.Namespace, layout: DataLayout) -> int:
    """`fool-the-model benchmark [MODEL.onnx ...]`: the game's models, the registered outside
    models and these files, on MNIST test and every round's verified drawings."""
    try:
        _open(layout)
        extra = [file_entrant(Path(p)) for p in args.models]
        percent = percent_of(load_rules(layout).retrain.heldout_fraction)
        board = leaderboard(layout, percent, extra)
    except (RegistryError, BenchmarkError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not layout.mnist_cache.is_file():
        print(
            "MNIST is not cached here: run `fool-the-model fetch-data` to score it.",
            file=sys.stderr,
        )
    if not board["rounds"]:
        print("No verified drawings yet: only MNIST is scored.", file=sys.stderr)
    print(table(board))
    print(f"\n{NOTE}")
    return 0
