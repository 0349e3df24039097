"""Train → export (with parity check) → model card → weights: one new model version.

The files of version vN appear in this order: `vN.pt` (reserved first, so two trainings never
pick the same number), `vN.onnx` (only once it passed the parity check), `vN.json` last. A model
counts as existing once its card is written, so a crash midway never leaves a half model in use.

Before its sha256 is taken the ONNX file is made self-describing (version, parent, weights hash,
contract, class names, MNIST and held-out accuracy, training data: model_files.ONNX_METADATA),
and the card gets the Hugging Face fields with one `model-index` result per evaluation set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path

import torch

from server.config import DataLayout
from server.learning.gate import accuracy
from server.learning.jobs.examples import ExampleSet
from server.mnist import Mnist, MnistUnavailable, load_mnist
from server.serving.inference import load_session
from server.serving.model_files import (
    CLASS_NAMES,
    INPUT_CONTRACT,
    LICENSE,
    OUTPUT_CONTRACT,
    PREPROCESSING,
    ModelCard,
    card_path_for,
    evaluation_result,
    latest_model,
    model_index,
    next_version,
    now_iso,
    read_card,
    sha256_file,
    version_number,
    weights_path_for,
    write_card,
)
from server.training.export import ExportError, describe_onnx, export_onnx, weights_sha256
from server.training.train import ExtraExample, ProgressCallback, TrainConfig, train

PARITY_IMAGES = 256
PARITY_TOLERANCE = 1e-4


def build_model(
    data_dir: Path,
    config: TrainConfig,
    *,
    extra: Iterable[ExtraExample] = (),
    parent: str | None = None,
    from_scratch: bool = False,
    recipe: str | None = None,
    on_progress: ProgressCallback | None = None,
    output: Path | None = None,
    mnist: Mnist | None = None,
    heldout: ExampleSet | None = None,
) -> ModelCard:
    """Train a model (fine-tuned from version `parent` if given, unless `from_scratch`) and save
    it as the next version. `recipe` (server/learning/recipes.py) is recorded on the card, with
    the training configuration (seed included) and the data counts: the card says how to train
    the same model again.

    Files go to `DATA/models/vN.{onnx,json,pt}`, or beside `output` when given (the card still
    says vN, the version it would have had). `heldout`, the game's held-out verified drawings,
    is measured and recorded in the file and the card. Returns the card, already written.
    """
    layout = DataLayout(Path(data_dir))
    mnist = mnist if mnist is not None else load_mnist(layout.root, show_progress=True)
    init_weights = None
    if parent is not None and not from_scratch:
        init_weights = weights_path_for(layout.model_path(parent))
        if not init_weights.is_file():
            raise FileNotFoundError(f"cannot fine-tune from {parent}: {init_weights} is missing")
        # Weights load only into their own shapes: a fine-tune is its parent's architecture.
        parent_card = read_card(card_path_for(layout.model_path(parent)))
        config = replace(config, architecture=parent_card.architecture)

    started = time.monotonic()
    result = train(mnist, config, extra=extra, init_weights=init_weights, on_progress=on_progress)
    train_seconds = time.monotonic() - started

    if output is None:
        version = _claim_version(layout)
        model_path = layout.model_path(version)
    else:
        version, model_path = next_version(layout), Path(output)
        model_path.parent.mkdir(parents=True, exist_ok=True)
    weights = weights_path_for(model_path)
    try:
        torch.save(result.model.state_dict(), weights)
        parity = export_onnx(
            result.model,
            model_path,
            parity_images=mnist.test_images[:PARITY_IMAGES],
            tolerance=PARITY_TOLERANCE,
        )
    except BaseException:
        weights.unlink(missing_ok=True)
        raise
    results = [evaluation_result("MNIST", "mnist", "test", result.test_accuracy)]
    heldout_figures: dict[str, float | int] = {"examples": 0}
    heldout = heldout.foolings() if heldout is not None else None
    if heldout is not None and len(heldout.labels):
        score = accuracy(load_session(model_path, threads=1), heldout.images, heldout.labels)
        heldout_figures = {"examples": len(heldout.labels), "accuracy": score}
        results.append(
            evaluation_result(
                "Fool the Model held-out verified drawings", "fool-the-model", "heldout", score
            )
        )
    created = now_iso()
    training = {**result.counts}
    describe_onnx(
        model_path,
        {
            "version": version,
            "parent": parent or "",
            "weights_sha256": weights_sha256(model_path),
            "architecture": config.architecture,
            "input": INPUT_CONTRACT,
            "output": OUTPUT_CONTRACT,
            "preprocessing": PREPROCESSING,
            "class_names": json.dumps(CLASS_NAMES),
            "mnist_test_accuracy": repr(float(result.test_accuracy)),
            "heldout_accuracy": json.dumps(heldout_figures),
            "training_data": json.dumps(
                {**training, "sources": "MNIST train + the game's verified drawings"}
            ),
            "license": LICENSE,
            "created": created,
        },
        doc_string=(
            f"Fool the Model {version}: a {config.architecture} digit classifier"
            f"{f' fine-tuned from {parent}' if parent else ''}. Input {INPUT_CONTRACT}; "
            f"output {OUTPUT_CONTRACT}. Preprocessing: {PREPROCESSING}."
        ),
        model_version=version_number(version),
    )
    card = ModelCard(
        version=version,
        sha256=sha256_file(model_path),
        created=created,
        architecture=config.architecture,
        parent=parent,
        training=training,
        mnist_test_accuracy=result.test_accuracy,
        gate={
            "onnx_parity": {
                "max_abs_diff": parity,
                "tolerance": PARITY_TOLERANCE,
                "images": PARITY_IMAGES,
                "passed": True,
            }
        },
        metrics={
            "train_seconds": round(train_seconds, 1),
            "config": asdict(config),
            **({"recipe": recipe} if recipe else {}),
        },
        datasets=["mnist", *(["fool-the-model"] if training.get("extra") else [])],
        base_model=parent,
        model_index=model_index(version, results),
    )
    write_card(card, card_path_for(model_path))
    return card


def _claim_version(layout: DataLayout) -> str:
    """The next version, claimed by creating its (empty) weights file exclusively."""
    layout.models_dir.mkdir(parents=True, exist_ok=True)
    while True:
        version = next_version(layout)
        try:
            weights_path_for(layout.model_path(version)).open("xb").close()
        except FileExistsError:
            continue  # another training took this number meanwhile
        return version


def train_command(args: argparse.Namespace, data_dir: Path) -> int:
    """CLI `fool-the-model train [--epochs N] [--quick] [--seed S] [--output FILE.onnx]`."""
    try:
        config = TrainConfig(seed=args.seed)
        if args.quick:  # a smoke test of the whole pipeline in seconds
            config = replace(config, epochs=1, train_limit=6000, test_limit=2000)
        if args.epochs is not None:
            config = replace(config, epochs=args.epochs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix != ".onnx":
        print(f"error: --output must name a .onnx file, got {output}", file=sys.stderr)
        return 2
    return _build_and_report(data_dir, config, output)


def ensure_model_command(data_dir: Path) -> int:
    """CLI `fool-the-model ensure-model`: train the default model only if none exists yet."""
    layout = DataLayout(Path(data_dir))
    existing = latest_model(layout)
    if existing is not None:
        print(
            f"model {existing.version} already exists ({layout.model_path(existing.version)}, "
            f"MNIST test accuracy {existing.mnist_test_accuracy:.2%}); not training"
        )
        return 0
    return _build_and_report(layout.root, TrainConfig(), None)


def _build_and_report(data_dir: Path, config: TrainConfig, output: Path | None) -> int:
    started = time.monotonic()
    try:
        card = build_model(data_dir, config, output=output)
    except (MnistUnavailable, ExportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    path = output if output is not None else DataLayout(Path(data_dir)).model_path(card.version)
    print(
        f"{card.version}: MNIST test accuracy {card.mnist_test_accuracy:.2%} on "
        f"{card.training['mnist_test']} images; {time.monotonic() - started:.0f} s in all "
        f"({card.metrics['train_seconds']:.0f} s training); wrote {path} and "
        f"{card_path_for(path).name}, {weights_path_for(path).name} beside it"
    )
    return 0
