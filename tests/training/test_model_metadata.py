"""Self-describing models: the ONNX file says what it is and how to feed it (metadata_props,
doc_string, model_version), and the JSON card carries the Hugging Face model-card fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from server.learning.jobs.examples import ExampleSet
from server.mnist import Mnist
from server.serving.model_files import (
    CLASS_NAMES,
    HF_CARD_FIELDS,
    INPUT_CONTRACT,
    ONNX_METADATA,
    card_json,
    read_card,
    sha256_file,
    write_card,
)
from server.training.export import describe_onnx, weights_sha256
from server.training.pipeline import build_model
from server.training.train import TrainConfig


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory, mnist: Mnist) -> Path:
    """A tiny model built through the pipeline with a held-out set: its .onnx path."""
    data_dir = tmp_path_factory.mktemp("described")
    heldout = ExampleSet.of(mnist.test_images[-40:], mnist.test_labels[-40:])
    config = TrainConfig(epochs=1, train_limit=600, test_limit=300, threads=1, show_progress=False)
    card = build_model(data_dir, config, mnist=mnist, heldout=heldout)
    return data_dir / "models" / f"{card.version}.onnx"


def test_the_onnx_file_says_what_it_is(described: Path) -> None:
    model = onnx.load(str(described))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert set(props) == set(ONNX_METADATA)
    card = read_card(described.with_suffix(".json"))
    assert props["version"] == card.version == "v1" and model.model_version == 1
    assert props["parent"] == ""
    assert props["weights_sha256"] == weights_sha256(described)
    assert props["architecture"] == card.architecture
    assert props["input"] == INPUT_CONTRACT and props["output"].startswith("log_probs")
    assert "centre of mass" in props["preprocessing"]
    assert json.loads(props["class_names"]) == CLASS_NAMES
    assert float(props["mnist_test_accuracy"]) == pytest.approx(card.mnist_test_accuracy)
    heldout = json.loads(props["heldout_accuracy"])
    assert heldout["examples"] == 40 and 0.0 <= heldout["accuracy"] <= 1.0
    assert json.loads(props["training_data"])["mnist_train"] == card.training["mnist_train"]
    assert props["license"] == card.license and props["created"] == card.created
    assert "v1" in model.doc_string and INPUT_CONTRACT in model.doc_string
    assert model.producer_name == "fool-the-model"
    # onnxruntime reads the same, for whoever serves the file without the onnx package
    meta = ort.InferenceSession(str(described), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.custom_metadata_map == props and meta.version == 1
    assert card.sha256 == sha256_file(described)  # taken after the metadata was written


def test_the_card_follows_the_hugging_face_fields(described: Path) -> None:
    raw = json.loads(described.with_suffix(".json").read_text())
    assert set(HF_CARD_FIELDS) <= set(raw)
    assert raw["license"] == "cc-by-4.0" and raw["datasets"] == ["mnist"]
    assert raw["pipeline_tag"] == "image-classification" and raw["library_name"] == "onnx"
    assert raw["intended_use"] and raw["limitations"]
    (entry,) = raw["model-index"]
    assert entry["name"] == "fool-the-model-v1"
    splits = {r["dataset"]["split"]: r for r in entry["results"]}
    assert set(splits) == {"test", "heldout"}
    for result in entry["results"]:
        assert result["task"]["type"] == "image-classification"
        assert set(result["dataset"]) == {"name", "type", "split"}
        (metric,) = result["metrics"]
        assert metric["type"] == "accuracy" and 0.0 <= metric["value"] <= 1.0
    assert splits["test"]["metrics"][0]["value"] == raw["mnist_test_accuracy"]


def test_old_cards_still_read(described: Path, tmp_path: Path) -> None:
    raw = json.loads(described.with_suffix(".json").read_text())
    old = {key: raw[key] for key in raw if key not in HF_CARD_FIELDS}
    (tmp_path / "v1.json").write_text(json.dumps(old))
    card = read_card(tmp_path / "v1.json")
    assert card.model_index == [] and card.license == "cc-by-4.0"
    write_card(card, tmp_path / "again.json")
    assert read_card(tmp_path / "again.json") == card
    assert json.loads(card_json(card))["model-index"] == []


def test_describing_keeps_the_weights_and_replaces_old_metadata(
    linear_onnx_model: object, tmp_path: Path
) -> None:
    path = linear_onnx_model(seed=3)  # type: ignore[operator]
    before = weights_sha256(path)
    describe_onnx(path, {"a": "1", "b": "2"}, doc_string="first", model_version=1)
    describe_onnx(path, {"version": "v9"}, doc_string="second", model_version=9)
    model = onnx.load(str(path))
    assert {p.key: p.value for p in model.metadata_props} == {"version": "v9"}
    assert (model.doc_string, model.model_version) == ("second", 9)
    assert weights_sha256(path) == before
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": np.zeros((2, 1, 28, 28), np.float32)})
    assert out.shape == (2, 10)
