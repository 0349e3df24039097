"""Fixtures shared by every test folder.

Helper modules beside this file serve every folder too: `waiting` (wait on a condition with a
deadline), `services` (free ports, /healthz, PostgreSQL, Redis) and `data_dirs` (data
directories and models).

`linear_onnx_model` builds a small, contract-compliant ONNX model with `onnx.helper` (no torch,
instant): input `image` [N,1,28,28] float32 in [0,1], output `log_probs` [N,10]. Tests that need a
model which *reads digits* use `trained_model` instead (a quick training on a small slice).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pytest
from data_dirs import SHARED_DATA_DIR, LinearModelFactory, add_model, new_data_dir
from services import PostgresServer, RedisServer, ServiceUnavailable

if TYPE_CHECKING:
    from server.mnist import Mnist

Service = TypeVar("Service", PostgresServer, RedisServer)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the threads of aiosqlite connections a failed test left open. They are not daemon
    threads, so one test failing between opening and closing a repository would otherwise keep
    pytest from ever exiting: the failure would show up as a CI timeout instead of a report."""
    import aiosqlite

    # `type(...) is`, not isinstance: isinstance on a dead weak proxy raises.
    for leaked in [obj for obj in gc.get_objects() if type(obj) is aiosqlite.Connection]:
        leaked.stop()


def build_linear_onnx(path: Path, seed: int = 0, scale: float = 1.0) -> Path:
    """Write a linear 784→10 log-softmax classifier with seeded random weights to `path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((784, 10)) * scale).astype(np.float32)
    bias = (rng.standard_normal(10) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        nodes=[
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["logits"]),
            helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=1),
        ],
        name=f"linear_{seed}",
        inputs=[helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        outputs=[helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def linear_onnx_model(tmp_path: Path) -> LinearModelFactory:
    """A factory: `linear_onnx_model(seed=1)` returns the path of a fresh linear ONNX model."""

    def make(seed: int = 0, scale: float = 1.0, name: str | None = None) -> Path:
        return build_linear_onnx(tmp_path / (name or f"linear-{seed}.onnx"), seed, scale)

    return make


@pytest.fixture
def data_dir(tmp_path: Path, linear_onnx_model: LinearModelFactory) -> Path:
    """A data directory a game server starts on: model v1 (a linear ONNX model) and nothing
    else; a test may add files before it starts a server on it. (tests/learning and
    tests/serving override it with `mnist_data_dir`.)"""
    root = new_data_dir(tmp_path / "data")
    add_model(root, "v1", linear_onnx_model(seed=1))
    return root


@pytest.fixture
def mnist_data_dir(tmp_path: Path) -> Path:
    """A data directory with the shared MNIST cache and no model, for a test that trains,
    evaluates or installs its own models."""
    return new_data_dir(tmp_path / "mnist-data", mnist=True)


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """The real MNIST from the shared data directory (downloaded once, then cached)."""
    from server.mnist import load_mnist

    return load_mnist(SHARED_DATA_DIR)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, mnist: Mnist) -> Path:
    """An ONNX model that reads digits (~93% on MNIST test), its card `v1.json` beside it.

    A quick training (4k images, 3 epochs) through the real pipeline, built once per session;
    `v1.pt` beside it holds the torch weights.
    """
    from server.training.pipeline import build_model
    from server.training.train import TrainConfig

    data_dir = tmp_path_factory.mktemp("trained-model")
    # one thread: two crawl when other work shares the cores, and this model is small
    config = TrainConfig(
        epochs=3, train_limit=4000, test_limit=2000, threads=1, show_progress=False
    )
    card = build_model(data_dir, config, mnist=mnist)
    return data_dir / "models" / f"{card.version}.onnx"


def _running(service: Callable[[], Service]) -> Iterator[Service]:
    """The started service, closed at the end; without one the test is skipped, except in CI
    (`$CI` set), where the servers are always installed (`make services`) and a missing one is
    a failure."""
    try:
        server = service().start()
    except ServiceUnavailable as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from _running(PostgresServer)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _running(RedisServer)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty game database on each backend in turn: a SQLite file, or a fresh PostgreSQL
    database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'game.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()
