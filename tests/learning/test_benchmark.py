"""The model leaderboard: any contract-honouring ONNX model scored on MNIST test and on every
round's verified drawings, leaving out per model what it may have been trained on; outside
models registered by upload, checked, never trusted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from benchmark_helpers import PERCENT, install_game_models, seed_rounds, seed_rounds_ids
from data_dirs import new_data_dir
from onnx import TensorProto, helper, numpy_helper

from game_rules.heldout import content_key, held_out
from server.cli import main
from server.config import DataLayout
from server.learning import benchmark
from server.learning.benchmark import (
    BenchmarkError,
    file_entrant,
    leaderboard,
    register_outside_model,
    table,
)
from server.mnist import Mnist
from server.serving.inference import load_session, run_batch


@pytest.fixture
def game(tmp_path: Path, mnist: Mnist, linear_onnx_model: Callable[..., Path]) -> Path:
    data_dir = new_data_dir(tmp_path / "data", mnist=True)
    install_game_models(data_dir, linear_onnx_model)
    seed_rounds(data_dir, mnist)
    return data_dir


def correct(path: Path, mnist: Mnist, indices: list[int]) -> list[bool]:
    images = mnist.test_images[indices].astype(np.float32) / 255.0
    guesses = run_batch(load_session(path), images).argmax(axis=1)
    return (guesses == mnist.test_labels[indices]).tolist()


def test_each_model_is_scored_on_what_it_cannot_have_seen(
    game: Path, mnist: Mnist, linear_onnx_model: Callable[..., Path]
) -> None:
    outside = file_entrant(linear_onnx_model(seed=7, name="outside.onnx"))
    board = leaderboard(DataLayout(game), PERCENT, [outside])
    ids = seed_rounds_ids(game)
    # The verified drawings are MNIST test digits 0..29 (round 1) and 30..59 (round 2).
    keys = [content_key(mnist.test_images[i].astype("<f4") / 255.0) for i in range(60)]
    split = held_out(keys, PERCENT)
    heldout = {1: split[:30], 2: split[30:]}
    assert len(ids[1]) == len(ids[2]) == 30
    assert [r["number"] for r in board["rounds"]] == [1, 2]
    assert [r["verified"] for r in board["rounds"]] == [30, 30]
    assert board["rounds"][0]["vmer"] == pytest.approx(30 / 32)
    models = {m["name"]: m for m in board["models"]}
    assert list(models) == ["v1", "v2", "outside.onnx"]
    counts = {name: [r["count"] for r in m["rounds"]] for name, m in models.items()}
    assert counts["v1"] == [30, 30]  # made before every drawing
    assert counts["v2"] == [sum(heldout[1]), 30]  # round 1 drawn before v2: held-out only
    assert counts["outside.onnx"] == [sum(heldout[1]), sum(heldout[2])]

    v2_round_2 = models["v2"]["rounds"][1]
    right = correct(DataLayout(game).model_path("v2"), mnist, list(range(30, 60)))
    assert v2_round_2["accuracy"] == pytest.approx(np.mean(right))
    wrong_ids = [i for i, ok in zip(ids[2], right, strict=True) if not ok]
    assert v2_round_2["fooling_count"] == len(wrong_ids)
    shown = [d["attempt_id"] for d in v2_round_2["fooling"]]
    assert shown == wrong_ids[: benchmark.FOOLING_SHOWN]
    assert all(d["png"].startswith("data:image/png;base64,") for d in v2_round_2["fooling"])
    mnist_right = correct(DataLayout(game).model_path("v1"), mnist, list(range(10_000)))
    assert models["v1"]["mnist_accuracy"] == pytest.approx(np.mean(mnist_right))


def test_the_cli_prints_a_per_round_table(
    game: Path, linear_onnx_model: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    outside = linear_onnx_model(seed=7, name="outside.onnx")
    assert main(["--data-dir", str(game), "benchmark", str(outside)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "kind", "MNIST", "round", "1", "round", "2"]
    assert [line.split()[0] for line in lines[2:5]] == ["v1", "v2", "outside.onnx"]
    assert lines[2].split()[1] == "game" and lines[4].split()[1] == "outside"
    assert lines[6].split()[0] == "vMER" and "v1" in lines[6] and "v2" in lines[6]
    assert main(["--data-dir", str(game), "benchmark", str(game / "missing.onnx")]) == 1
    assert "no model file at" in capsys.readouterr().err


def test_the_table_reads_without_rounds() -> None:
    board = {
        "rounds": [],
        "models": [{"name": "v1", "kind": "game", "mnist_accuracy": 0.9, "rounds": []}],
    }
    assert table(board).splitlines()[2].split() == ["v1", "game", "90.0%"]


def contract_breaker(path: Path) -> Path:
    """A valid ONNX model with the wrong output shape ([N, 5])."""
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W"], ["log_probs"]),
        ],
        "five",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(np.zeros((784, 5), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_outside_model_is_checked_before_it_is_registered(
    game: Path,
    tmp_path: Path,
    linear_onnx_model: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout = DataLayout(game)
    good = linear_onnx_model(seed=5).read_bytes()
    with pytest.raises(BenchmarkError, match="lower-case"):
        register_outside_model(layout, "../evil", good)
    with pytest.raises(BenchmarkError, match="empty"):
        register_outside_model(layout, "empty", b"")
    with pytest.raises(BenchmarkError, match=r"cannot run|contract"):
        register_outside_model(layout, "garbage", b"not an onnx file")
    with pytest.raises(BenchmarkError, match="contract"):
        register_outside_model(layout, "five", contract_breaker(tmp_path / "5.onnx").read_bytes())
    monkeypatch.setattr(benchmark, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(BenchmarkError, match="limit is"):
        register_outside_model(layout, "big", good)
    monkeypatch.undo()
    folder = benchmark.outside_models_dir(layout)
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []

    record = register_outside_model(layout, "lenet-x", good)
    assert record["name"] == "lenet-x" and record["bytes"] == len(good)
    with pytest.raises(BenchmarkError, match="exists already"):
        register_outside_model(layout, "lenet-x", good)
    board = leaderboard(layout, PERCENT)
    assert [(m["name"], m["kind"]) for m in board["models"]] == [
        ("v1", "game"),
        ("v2", "game"),
        ("lenet-x", "outside"),
    ]
