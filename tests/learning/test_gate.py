"""The gate: each check passes or fails for the right reason, with the numbers in the reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from learning_helpers import install_model

from server.config import DataLayout
from server.learning.gate import Check, GateResult, GateSettings, accuracy, run_gate
from server.learning.jobs.examples import ExampleSet
from server.serving.inference import load_session, run_batch

Digits = tuple[np.ndarray, np.ndarray]


def check(result: GateResult, name: str) -> Check:
    (found,) = [c for c in result.checks if c.name == name]
    return found


def test_a_model_that_cannot_read_digits_fails_the_mnist_floor(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    card = install_model(data_dir, "v2", linear_onnx_model(seed=2))
    images, labels = test_digits
    result = run_gate(
        DataLayout(data_dir).model_path("v2"), card, mnist_images=images, mnist_labels=labels
    )
    assert not result.passed
    mnist = check(result, "mnist_accuracy")
    assert not mnist.passed and mnist.threshold == 0.985
    assert mnist.value is not None and mnist.value < 0.5
    assert mnist.reason == f"MNIST accuracy {mnist.value:.4f} < floor 0.985 (300 test images)"
    assert [c.name for c in result.failed()] == ["mnist_accuracy"]
    assert result.reason == mnist.reason
    assert result.to_dict()["passed"] is False


def test_the_floor_is_a_parameter(data_dir: Path, linear_onnx_model, test_digits: Digits) -> None:
    card = install_model(data_dir, "v2", linear_onnx_model(seed=2))
    result = run_gate(
        DataLayout(data_dir).model_path("v2"),
        card,
        mnist_images=test_digits[0],
        mnist_labels=test_digits[1],
        settings=GateSettings(mnist_floor=0.0),
    )
    assert result.passed, result.reason
    assert result.reason == "all checks passed"


def test_parity_is_read_from_the_card(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    path = linear_onnx_model(seed=2)
    lenient = GateSettings(mnist_floor=0.0)
    for parity, expected in [
        (3e-3, "ONNX/torch max abs difference 3.00e-03 > tolerance 1e-04"),
        (None, "no ONNX/torch parity was recorded by the exporter"),
    ]:
        card = install_model(data_dir, "v2", path, parity=parity)
        result = run_gate(
            DataLayout(data_dir).model_path("v2"),
            card,
            mnist_images=test_digits[0],
            mnist_labels=test_digits[1],
            settings=lenient,
        )
        assert result.reason == expected


def test_a_file_that_is_not_what_its_card_says_fails_integrity(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    card = install_model(data_dir, "v2", linear_onnx_model(seed=2))
    forged = replace(card, sha256="0" * 64)
    result = run_gate(
        DataLayout(data_dir).model_path("v2"),
        forged,
        mnist_images=test_digits[0],
        mnist_labels=test_digits[1],
    )
    assert [c.name for c in result.checks] == ["integrity"]
    assert "is not the model the card describes" in result.reason
    missing = run_gate(
        data_dir / "nope.onnx", card, mnist_images=test_digits[0], mnist_labels=test_digits[1]
    )
    assert "does not exist" in missing.reason


def test_a_regression_on_an_earlier_rounds_held_out_set_fails(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    layout = DataLayout(data_dir)
    install_model(data_dir, "v1", linear_onnx_model(seed=1))
    card = install_model(data_dir, "v2", linear_onnx_model(seed=2))
    images = test_digits[0][:60]
    # Round 1's held-out labels are what the serving model says: it scores 100% there.
    serving_says = run_batch(load_session(layout.model_path("v1")), images).argmax(axis=1)
    rounds = [1] * 50 + [2] * 10
    heldout = ExampleSet.of(images, serving_says, rounds=rounds)
    result = run_gate(
        layout.model_path("v2"),
        card,
        mnist_images=test_digits[0],
        mnist_labels=test_digits[1],
        serving=layout.model_path("v1"),
        heldout=heldout,
        settings=GateSettings(mnist_floor=0.0, heldout_tolerance=0.05, min_heldout=20),
    )
    round1, round2 = check(result, "heldout_round_1"), check(result, "heldout_round_2")
    assert not round1.passed and round1.threshold == 0.95
    assert round1.reason.startswith(f"round 1 held-out accuracy {round1.value:.4f} < serving")
    assert "serving 1.0000 − tolerance 0.05 (50 drawings)" in round1.reason
    assert round2.passed and "only 10 held-out drawings (< 20), not judged" in round2.reason
    assert result.reason == round1.reason


def test_the_serving_model_passes_against_itself(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    layout = DataLayout(data_dir)
    card = install_model(data_dir, "v1", linear_onnx_model(seed=1))
    images, labels = test_digits
    heldout = ExampleSet.of(images[:40], labels[:40], rounds=[1] * 40)
    result = run_gate(
        layout.model_path("v1"),
        card,
        mnist_images=images,
        mnist_labels=labels,
        serving=layout.model_path("v1"),
        heldout=heldout,
        settings=GateSettings(mnist_floor=0.0),
    )
    assert result.passed, result.reason
    same = check(result, "heldout_round_1")
    assert same.value == accuracy(load_session(layout.model_path("v1")), images[:40], labels[:40])
