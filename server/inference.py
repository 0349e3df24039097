"""Serving the model with ONNX Runtime: sessions, batches, and a micro-batching `Predictor`.

No torch here or on any import path that reaches this module: the serving process stays small and
starts fast. The model contract (docs in README): input `image` float32 [N, 1, 28, 28] in [0, 1],
white ink on black; output `log_probs` [N, 10].

`Predictor` coalesces concurrent `predict()` calls into one session run (at most `max_batch`
images, waiting at most `max_wait_ms` for company), runs it in a worker thread so the event loop
keeps serving, and hands each caller its own probabilities and the version of the model that
produced them. `swap()` loads and warms a new model, then switches in one assignment: a batch
already running finishes on the old session, and no request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

INPUT_NAME = "image"
OUTPUT_NAME = "log_probs"
NUM_CLASSES = 10


class ModelError(RuntimeError):
    """A model file that is missing, unreadable or does not honour the model contract."""


class Overloaded(RuntimeError):
    """Too many predictions are waiting; the caller should try again shortly."""


class PredictorClosed(RuntimeError):
    """The predictor was closed (the server is shutting down)."""


@dataclass(frozen=True)
class Prediction:
    probs: tuple[float, ...]
    label: int
    model_version: str


def load_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """Open an ONNX model for CPU inference and check it honours the contract."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"No model file at {path}.")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; ORT's warnings are noise for a user
    # Idle worker threads sleep instead of spinning: the event loop shares these cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own unrelated exception types for bad files
        raise ModelError(f"{path} is not a readable ONNX model: {exc}") from exc
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
        raise ModelError(
            f"{path} does not follow the model contract: expected input {INPUT_NAME!r} and "
            f"output {OUTPUT_NAME!r}, found inputs {inputs} and outputs {outputs}."
        )
    return session


def run_batch(session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
    """Class probabilities [N, 10] for float32 images [N, 28, 28] in [0, 1]."""
    batch = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, 1, 28, 28)
    (log_probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
    return np.exp(log_probs)


@dataclass(frozen=True)
class _Model:
    session: ort.InferenceSession
    version: str


@dataclass(frozen=True)
class _Request:
    image: np.ndarray
    answer: asyncio.Future[Prediction]


class Predictor:
    """Micro-batched predictions from one ONNX model, hot-swappable to another."""

    def __init__(
        self,
        model_path: str | Path,
        version: str,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        max_queue: int = 1024,
        threads: int | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1 and max_wait_ms ≥ 0")
        self._initial = (Path(model_path), version)
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000
        self._threads = threads
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(max_queue)
        self._model: _Model | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._swap_lock = asyncio.Lock()
        self._closed = False
        self.batches_run = 0  # session runs so far; tests and metrics read it

    async def __aenter__(self) -> Predictor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def version(self) -> str:
        """The version that answers requests from now on."""
        return self._model.version if self._model else self._initial[1]

    async def start(self) -> None:
        """Load and warm the first model, then start batching."""
        if self._batcher is not None:
            return
        path, version = self._initial
        self._model = _Model(await asyncio.to_thread(self._load_warm, path), version)
        self._batcher = asyncio.create_task(self._run(), name="predictor-batcher")

    async def close(self) -> None:
        """Stop batching; every waiting caller gets `PredictorClosed`."""
        self._closed = True
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
        while not self._queue.empty():
            self._fail(self._queue.get_nowait(), PredictorClosed("The model server is stopping."))

    async def predict(self, image: np.ndarray) -> Prediction:
        """The model's answer for one [28, 28] float32 image in [0, 1]."""
        if self._closed or self._batcher is None:
            raise PredictorClosed("The predictor is not running.")
        if image.shape != (28, 28):
            raise ValueError(f"expected a 28×28 image, got shape {image.shape}")
        answer: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Request(image, answer))
        except asyncio.QueueFull:
            raise Overloaded("The model is busy; try again in a moment.") from None
        return await answer

    async def swap(self, model_path: str | Path, version: str) -> None:
        """Serve `model_path` from now on. Raises `ModelError` (and keeps the old model) if bad."""
        async with self._swap_lock:
            session = await asyncio.to_thread(self._load_warm, Path(model_path))
            self._model = _Model(session, version)  # one assignment: the switch is atomic

    def _load_warm(self, path: Path) -> ort.InferenceSession:
        session = load_session(path, self._threads)
        # The first runs at a new batch size allocate; pay for that before serving.
        for size in {1, self._max_batch}:
            run_batch(session, np.zeros((size, 28, 28), dtype=np.float32))
        return session

    async def _run(self) -> None:
        batch: list[_Request] = []
        try:
            while True:
                batch = []
                await self._collect(batch)
                await self._answer(batch)
        finally:
            # Cancelled by close(): whoever is still waiting in this batch gets a clear error.
            for request in batch:
                self._fail(request, PredictorClosed("The model server is stopping."))

    async def _collect(self, batch: list[_Request]) -> None:
        """Wait for one request, then gather more until the batch is full or the wait is over."""
        batch.append(await self._queue.get())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break

    async def _answer(self, batch: list[_Request]) -> None:
        # A cancelled caller (a superseded live guess) needs no answer.
        live = [request for request in batch if not request.answer.done()]
        if not live:
            return
        model = self._model  # this batch finishes on this model even if a swap lands meanwhile
        assert model is not None
        try:
            images = np.stack([request.image for request in live])
            probs = await asyncio.to_thread(run_batch, model.session, images)
        except Exception as exc:  # fail this batch, keep the batcher alive
            for request in live:
                self._fail(request, exc)
            return
        self.batches_run += 1
        labels = probs.argmax(axis=1).tolist()
        for request, row, label in zip(live, probs.tolist(), labels, strict=True):
            if not request.answer.done():
                request.answer.set_result(Prediction(tuple(row), label, model.version))

    @staticmethod
    def _fail(request: _Request, error: BaseException) -> None:
        if not request.answer.done():
            request.answer.set_exception(error)
