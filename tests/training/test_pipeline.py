"""train → export → card → weights, and the `train` / `ensure-model` commands."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from server.config import DataLayout
from server.mnist import Mnist
from server.serving.model_files import (
    latest_model,
    list_models,
    read_card,
    sha256_file,
    write_card,
)
from server.training import pipeline
from server.training.export import ExportError
from server.training.model import DEFAULT_ARCHITECTURE, Classifier
from server.training.pipeline import build_model, ensure_model_command, train_command
from server.training.train import TrainConfig, TrainResult


def test_the_pipeline_writes_model_card_and_weights(trained_model: Path) -> None:
    layout = DataLayout(trained_model.parent.parent)
    card = read_card(trained_model.with_suffix(".json"))

    assert [c.version for c in list_models(layout)] == ["v1"]
    assert card.version == "v1" and card.parent is None
    assert card.sha256 == sha256_file(trained_model)
    assert card.architecture == DEFAULT_ARCHITECTURE
    assert card.training == {"mnist_train": 4000, "extra": 0, "replay": 0, "mnist_test": 2000}
    assert card.gate["onnx_parity"]["passed"] is True
    assert card.gate["onnx_parity"]["max_abs_diff"] <= 1e-4
    assert card.metrics["config"]["epochs"] == 3 and card.metrics["train_seconds"] > 0
    assert trained_model.with_suffix(".pt").stat().st_size > 50_000


def _copy_data_dir(trained_model: Path, tmp_path: Path) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    shutil.copytree(trained_model.parent, layout.models_dir)
    return layout


class _FakeTraining:
    """Stands in for `train` (an untrained model at once, recording what it was asked) and for
    the ONNX export, which takes seconds and has its own tests (test_export.py)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def __call__(self, mnist: Mnist, config: TrainConfig, **kwargs: object) -> TrainResult:
        self.calls.append({"config": config, **kwargs})
        counts = {"mnist_train": 1, "extra": 0, "mnist_test": 1}
        return TrainResult(model=Classifier().eval(), test_accuracy=0.5, counts=counts)


@pytest.fixture
def fake_training(
    monkeypatch: pytest.MonkeyPatch, linear_onnx_model: Callable[..., Path]
) -> _FakeTraining:
    fake = _FakeTraining()

    def fake_export(model: object, path: Path, **kwargs: object) -> float:
        shutil.copy(linear_onnx_model(), path)  # a valid file, which the pipeline describes
        return 0.0

    monkeypatch.setattr(pipeline, "train", fake)
    monkeypatch.setattr(pipeline, "export_onnx", fake_export)
    return fake


def _with_architecture(layout: DataLayout, version: str, architecture: str) -> None:
    card_path = layout.model_card_path(version)
    write_card(replace(read_card(card_path), architecture=architecture), card_path)


def test_a_fine_tune_keeps_its_parents_architecture_and_a_new_model_gets_the_default(
    trained_model: Path, tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining
) -> None:
    layout = _copy_data_dir(trained_model, tmp_path)
    _with_architecture(layout, "v1", "MNIST_Model")  # a game started on the seed widths

    child = build_model(layout.root, TrainConfig(), parent="v1", mnist=mnist)
    fresh = build_model(layout.root, TrainConfig(), parent="v1", from_scratch=True, mnist=mnist)

    configs = [call["config"] for call in fake_training.calls]
    assert configs == [replace(TrainConfig(), architecture="MNIST_Model"), TrainConfig()]
    assert (child.architecture, fresh.architecture) == ("MNIST_Model", DEFAULT_ARCHITECTURE)
    assert child.metrics["config"]["architecture"] == "MNIST_Model"


def test_a_parent_of_an_architecture_this_trainer_cannot_build_is_refused(
    trained_model: Path, tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining
) -> None:
    layout = _copy_data_dir(trained_model, tmp_path)
    _with_architecture(layout, "v1", "ResNet-50")

    with pytest.raises(ValueError, match=r"unknown architecture 'ResNet-50'.*MNIST_Model"):
        build_model(layout.root, TrainConfig(), parent="v1", mnist=mnist)
    assert fake_training.calls == [] and [c.version for c in list_models(layout)] == ["v1"]


def test_fine_tuning_makes_the_next_version_with_its_parent(
    trained_model: Path, tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining
) -> None:
    layout = _copy_data_dir(trained_model, tmp_path)
    card = build_model(layout.root, TrainConfig(), parent="v1", mnist=mnist)

    assert (card.version, card.parent) == ("v2", "v1")
    assert fake_training.calls[0]["init_weights"] == layout.models_dir / "v1.pt"
    assert [c.version for c in list_models(layout)] == ["v1", "v2"]
    assert read_card(layout.model_card_path("v2")) == card


def test_a_missing_parent_is_refused_before_training(
    tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining
) -> None:
    with pytest.raises(FileNotFoundError, match="cannot fine-tune from v7"):
        build_model(tmp_path, TrainConfig(), parent="v7", mnist=mnist)
    assert fake_training.calls == []


def test_a_failed_export_leaves_no_model_behind(
    tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining, monkeypatch
) -> None:
    def failing_export(*args: object, **kwargs: object) -> float:
        raise ExportError("ONNX output differs from torch")

    monkeypatch.setattr(pipeline, "export_onnx", failing_export)
    with pytest.raises(ExportError):
        build_model(tmp_path, TrainConfig(), mnist=mnist)
    assert list(DataLayout(tmp_path).models_dir.iterdir()) == []


def test_ensure_model_reuses_an_existing_model(
    trained_model: Path, tmp_path: Path, fake_training: _FakeTraining, capsys
) -> None:
    layout = _copy_data_dir(trained_model, tmp_path)
    assert ensure_model_command(layout.root) == 0
    assert fake_training.calls == []
    assert "model v1 already exists" in capsys.readouterr().out


def test_ensure_model_trains_the_default_model_once(
    tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(pipeline, "load_mnist", lambda *args, **kwargs: mnist)
    assert ensure_model_command(tmp_path) == 0
    assert ensure_model_command(tmp_path) == 0

    assert [call["config"] for call in fake_training.calls] == [TrainConfig()]
    latest = latest_model(DataLayout(tmp_path))
    assert latest is not None and latest.version == "v1"
    out = capsys.readouterr().out
    assert "v1: MNIST test accuracy 50.00%" in out and "already exists" in out


def _args(**options: object) -> argparse.Namespace:
    return argparse.Namespace(
        **({"epochs": None, "quick": False, "seed": 0, "output": None} | options)
    )


def test_train_command_options(
    tmp_path: Path, mnist: Mnist, fake_training: _FakeTraining, monkeypatch
) -> None:
    monkeypatch.setattr(pipeline, "load_mnist", lambda *args, **kwargs: mnist)
    output = tmp_path / "elsewhere" / "candidate.onnx"

    assert train_command(_args(quick=True, seed=5, output=str(output)), tmp_path / "data") == 0
    assert train_command(_args(epochs=3), tmp_path / "data") == 0

    quick, default = (call["config"] for call in fake_training.calls)
    assert quick == TrainConfig(seed=5, epochs=1, train_limit=6000, test_limit=2000)
    assert default == TrainConfig(epochs=3)
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "candidate.json",
        "candidate.onnx",
        "candidate.pt",
    ]
    assert [c.version for c in list_models(DataLayout(tmp_path / "data"))] == ["v1"]


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"epochs": 0}, "invalid training configuration"),
        ({"output": "model.txt"}, "must name a .onnx file"),
    ],
)
def test_train_command_refuses_bad_options(
    tmp_path: Path, fake_training: _FakeTraining, capsys, options: dict[str, object], complaint: str
) -> None:
    assert train_command(_args(**options), tmp_path) == 2
    assert complaint in capsys.readouterr().err
    assert fake_training.calls == []
