"""The gate: each check passes or fails for the right reason, with the numbers in the reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
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
    assert round1.reason.startswith(
        f"round 1 held-out foolings: accuracy {round1.value:.4f} < serving"
    )
    assert "serving 1.0000 − tolerance 0.05 (50 drawings)" in round1.reason
    assert round2.passed and "only 10 (< 20), not judged" in round2.reason
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
        settings=GateSettings(mnist_floor=0.0, heldout_floor=0.0),
    )
    assert result.passed, result.reason
    same = check(result, "heldout_round_1")
    assert same.value == accuracy(load_session(layout.model_path("v1")), images[:40], labels[:40])


def less_of_digit(source: Path, target: Path, digit: int, shift: float) -> Path:
    """`source` (a linear ONNX model) with `shift` taken off the bias of `digit`: it says
    `digit` less often and nothing else changes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == "b":
            bias = numpy_helper.to_array(tensor).copy()
            bias[digit] -= shift
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(bias, "b"))
    onnx.save(model, str(target))
    return target


def serving_reads(layout: DataLayout, images: np.ndarray) -> np.ndarray:
    """Labels the serving model v1 reads right: what it says."""
    return run_batch(load_session(layout.model_path("v1")), images).argmax(axis=1)


def against_v1(layout: DataLayout, card, images: np.ndarray, labels: np.ndarray, **options):
    """The gate on candidate v2 with v1 serving."""
    return run_gate(
        layout.model_path("v2"),
        card,
        mnist_images=images,
        mnist_labels=labels,
        serving=layout.model_path("v1"),
        **options,
    )


def test_a_candidate_that_drops_one_digit_by_3_points_is_rejected_for_it(
    data_dir: Path, linear_onnx_model, mnist
) -> None:
    layout = DataLayout(data_dir)
    serving = linear_onnx_model(seed=1)
    install_model(data_dir, "v1", serving)
    images = mnist.test_images[:3000].astype(np.float32) / 255.0
    labels = serving_reads(layout, images)
    digit = int(np.bincount(labels, minlength=10).argmax())  # the digit with most images
    # The smallest margins by which v1 says `digit`: shift the bias past the 3rd percentile.
    logits = np.log(run_batch(load_session(layout.model_path("v1")), images[labels == digit]))
    margins = np.sort(logits[:, digit] - np.sort(logits, axis=1)[:, -2])
    shift = float(margins[int(0.03 * len(margins))]) + 1e-4
    card = install_model(
        data_dir, "v2", less_of_digit(serving, data_dir / "less.onnx", digit, shift)
    )

    result = against_v1(
        layout,
        card,
        images,
        labels,
        settings=GateSettings(mnist_floor=0.9),
    )

    per_class = check(result, "mnist_per_class")
    assert [c.name for c in result.failed()] == ["mnist_per_class"]
    assert per_class.value == pytest.approx(-0.03, abs=0.01)
    assert per_class.threshold == -0.02
    after = 100 * (1 + per_class.value)
    assert per_class.reason == (
        f"digit {digit} fell {-100 * per_class.value:.1f} points on MNIST test "
        f"(100.0% → {after:.1f}%), more than the 2 allowed"
    )
    assert check(result, "mnist_accuracy").passed  # overall, 3 points of one digit hide well
    assert result.reason == per_class.reason


def test_a_candidate_that_keeps_every_digit_passes_the_per_class_check(
    data_dir: Path, linear_onnx_model, mnist
) -> None:
    layout = DataLayout(data_dir)
    install_model(data_dir, "v1", linear_onnx_model(seed=1))
    card = install_model(data_dir, "v2", linear_onnx_model(seed=1, name="same.onnx"))
    images = mnist.test_images[:3000].astype(np.float32) / 255.0
    result = run_gate(
        layout.model_path("v2"),
        card,
        mnist_images=images,
        mnist_labels=serving_reads(layout, images),
        serving=layout.model_path("v1"),
    )
    per_class = check(result, "mnist_per_class")
    assert per_class.passed and per_class.value == 0.0
    assert per_class.reason.startswith("no digit fell more than 2 points on MNIST test")


def test_a_candidate_that_forgets_drawings_players_had_read_right_is_rejected(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    layout = DataLayout(data_dir)
    install_model(data_dir, "v1", linear_onnx_model(seed=1))
    card = install_model(data_dir, "v2", linear_onnx_model(seed=2))
    images = test_digits[0][:100]
    ordinary = ExampleSet.of(images, serving_reads(layout, images), fooled=[False] * 100)

    result = against_v1(
        layout,
        card,
        test_digits[0],
        test_digits[1],
        heldout=ordinary,
        settings=GateSettings(mnist_floor=0.0),
    )

    read_right = check(result, "read_right")
    assert [c.name for c in result.failed()] == ["read_right"]
    assert read_right.value is not None and read_right.value < 0.5
    assert read_right.threshold == pytest.approx(0.98)
    assert read_right.reason == (
        f"held-out drawings the model read right: accuracy {read_right.value:.4f} < serving "
        "1.0000 − tolerance 0.02 (100 drawings)"
    )
    assert not any(c.name.startswith("heldout_round") for c in result.checks)  # no foolings


def test_held_out_foolings_must_reach_a_floor_even_when_the_serving_model_scored_0(
    data_dir: Path, linear_onnx_model, test_digits: Digits
) -> None:
    layout = DataLayout(data_dir)
    install_model(data_dir, "v1", linear_onnx_model(seed=1))
    card = install_model(data_dir, "v2", linear_onnx_model(seed=2))
    images = test_digits[0][:60]
    candidate_says = run_batch(load_session(layout.model_path("v2")), images).argmax(axis=1)
    serving_says = serving_reads(layout, images)
    # Foolings of v1 (it never says their label); v2 reads the first 20 of them.
    fooled = candidate_says != serving_says
    labels = np.where(np.arange(60) < 20, candidate_says, (serving_says + 1) % 10)
    labels = np.where(labels == serving_says, (labels + 1) % 10, labels)
    foolings = ExampleSet.of(images[fooled], labels[fooled], rounds=[1] * int(fooled.sum()))
    expected = accuracy(load_session(layout.model_path("v2")), foolings.images, foolings.labels)
    assert 0 < expected < 0.5

    def gate(floor: float) -> Check:
        result = against_v1(
            layout,
            card,
            test_digits[0],
            test_digits[1],
            heldout=foolings,
            settings=GateSettings(mnist_floor=0.0, heldout_floor=floor),
        )
        return check(result, "heldout_round_1")

    low = gate(0.5)
    assert not low.passed and low.threshold == 0.5
    assert low.reason == (
        f"round 1 held-out foolings: accuracy {expected:.4f} < floor 0.5 ({len(foolings)} "
        "drawings): the candidate did not learn this round's foolings"
    )
    lenient = gate(0.1)
    assert lenient.passed and lenient.reason.endswith("; ≥ floor 0.1")
