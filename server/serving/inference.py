"""Serving the model with ONNX Runtime: sessions, batches, and a micro-batching `Predictor`.

No torch here or on any import path that reaches this module: the serving process stays small and
starts fast. The model contract (docs in README): input `image` float32 [N, 1, 28, 28] in [0, 1],
white ink on black; output `log_probs` [N, 10].

`Predictor` coalesces concurrent requests into one batch (at most `max_batch`, waiting at most
`max_wait_ms` for company) and hands each caller its own probabilities and the version of the
model that produced them. A request is an image, or a drawing as strokes or PNG: the batch turns
drawings into images itself (server/serving/preprocess.py), all its strokes in one go.

Batches run in a model worker process (server/serving/model_worker.py), not in a thread. Drawing and
inferring cost ~0.2 ms of CPU per live guess, much of it Python and numpy calls that hold the GIL;
in a thread they fought the event loop for the GIL and one process saturated near 1,500 guesses/s
whatever we moved where (bench/load.py, py-spy). In its own process that work runs on the other
core, and the event loop only writes each batch to a pipe and reads the answers back. Two
batches may be at the worker at once (IN_FLIGHT): it starts the next the moment it has answered
one, rather than idling while the event loop reads the answer and collects the next batch. Live
guesses are asked for with futures (`answer_frame`, `answer_increments`), which the batch answers
directly: the session sends the reply from the future's callback.

`swap()` starts a worker with the new model while the old one keeps serving, then switches in
one assignment: a batch already running finishes on the old model, later ones run on the new,
and no request fails. A worker that dies fails only its batch; the next batch starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from server.realtime.protocol import ProtocolError
from server.serving.preprocess import DrawingError

INPUT_NAME = "image"
OUTPUT_NAME = "log_probs"
NUM_CLASSES = 10


WORKER_TIMEOUT = 60.0  # seconds: longer than loading a model or running the biggest batch
IN_FLIGHT = 2  # batches sent to the worker and not answered yet (see Predictor._run)
STOPPED = "The model worker stopped or hung; a new one starts with the next batch."


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
    image: np.ndarray | None  # [28, 28] float32: what the model saw, when asked for


@dataclass(frozen=True)
class HeldSubmission:
    """A v2 submission of the drawing the model worker holds: its strokes as JSON (msgspec's,
    what is stored) and the model's guess with the 28×28 it saw (None: the drawing is empty).
    One trip to the worker, and the strokes never become Python lists on the event loop."""

    strokes_json: bytes
    prediction: Prediction | None


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
class Explanation:
    """Where the model looked (server/serving/saliency.py), and what it saw and guessed."""

    probs: tuple[float, ...]
    label: int
    model_version: str
    image: np.ndarray  # [28, 28] float32 in [0, 1]: the input the model saw
    heatmap: np.ndarray  # [28, 28] float32 in [0, 1]: how much covering each pixel hurt the guess


@dataclass(slots=True)  # (not frozen: a frozen dataclass's __init__ costs three times more)
class _Request:
    kind: str  # "image", "strokes" or "png": how the worker reads `drawing`
    drawing: object
    want_image: bool  # send the 28×28 back (submissions store it)
    answer: asyncio.Future[Any]  # a Prediction, or a frame's reply text


class _Worker:
    """The model worker process, and the pipe to it. The worker answers its messages in the
    order they came, so a message may be written while earlier ones are still being answered
    (`Predictor` keeps two batches in flight): the replies are read by one task, in order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.broken = False  # the pipe failed: every reply still owed is lost
        self._owed: deque[asyncio.Future[tuple[Any, ...]]] = deque()  # replies, in order
        self._reader = asyncio.create_task(self._read_replies(), name="model-worker-replies")

    @classmethod
    async def start(cls, threads: int | None, warm_batch: int) -> _Worker:
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.serving.model_worker",
            str(threads or 0),
            str(warm_batch),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        return cls(process)

    async def call(self, message: tuple[object, ...]) -> tuple[Any, ...]:
        """Send one message and return its reply; `ModelError` if the worker is gone or stuck.
        A caller cancelled while waiting loses only its reply (read and dropped)."""
        stdin = self.process.stdin
        assert stdin is not None
        if self.broken or stdin.is_closing():
            raise ModelError(STOPPED)
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        reply = asyncio.get_running_loop().create_future()
        self._owed.append(reply)
        try:
            async with asyncio.timeout(WORKER_TIMEOUT):
                stdin.write(len(data).to_bytes(4, "big") + data)
                await stdin.drain()
                answer = await reply
        except (OSError, TimeoutError):
            self._break()
            raise ModelError(STOPPED) from None
        if answer[0] == "failed":
            raise answer[1]
        return answer

    async def _read_replies(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                size = int.from_bytes(await stdout.readexactly(4), "big")
                answer: tuple[Any, ...] = pickle.loads(await stdout.readexactly(size))
                reply = self._owed.popleft()
                if not reply.done():
                    reply.set_result(answer)
        except (OSError, asyncio.IncompleteReadError):  # the worker exited or was killed
            self._break()

    def _break(self) -> None:
        """The conversation no longer lines up: fail every reply owed, and end the worker."""
        self.broken = True
        while self._owed:
            reply = self._owed.popleft()
            if not reply.done():
                reply.set_exception(ModelError(STOPPED))
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    @property
    def alive(self) -> bool:
        return not self.broken and self.process.returncode is None

    async def stop(self) -> None:
        """Stop the worker once the messages sent are answered (it reads them all before the
        end of its input)."""
        if self.process.stdin is not None:
            self.process.stdin.close()  # the worker exits at the end of its input
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


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
        max_explaining: int = 8,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1 and max_wait_ms ≥ 0")
        self._model = (Path(model_path), version)  # the model answering from now on
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000
        self._crowd = max(1, max_batch // 8)  # waiting requests that make a batch worth it
        self._threads = threads
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(max_queue)
        self._worker: _Worker | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the running loop, from start()
        self._swap_lock = asyncio.Lock()
        self._restart_lock = asyncio.Lock()
        self._closed = False
        self._explaining = 0  # explanations waiting for (or in) the worker
        self._max_explaining = max_explaining
        self.batches_run = 0  # batches answered so far; tests and metrics read it

    async def __aenter__(self) -> Predictor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def worker_pid(self) -> int | None:
        """The model worker process's id (tests read it)."""
        return self._worker.process.pid if self._worker else None

    @property
    def version(self) -> str:
        """The version that answers requests from now on."""
        return self._model[1]

    async def start(self) -> None:
        """Start the worker with the first model, then start batching."""
        if self._batcher is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._worker = await self._start_worker(*self._model)
        self._batcher = asyncio.create_task(self._run(), name="predictor-batcher")

    async def close(self) -> None:
        """Stop batching and the worker; every waiting caller gets `PredictorClosed`."""
        self._closed = True
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
        while not self._queue.empty():
            self._fail(self._queue.get_nowait(), PredictorClosed("The model server is stopping."))
        if self._worker is not None:
            await self._worker.stop()

    async def predict(self, image: np.ndarray) -> Prediction:
        """The model's answer for one [28, 28] float32 image in [0, 1]."""
        if image.shape != (28, 28):
            raise ValueError(f"expected a 28×28 image, got shape {image.shape}")
        return await self._ask("image", image, want_image=False)

    async def predict_strokes(self, strokes: object, *, want_image: bool = False) -> Prediction:
        """The model's answer for strokes `[[[x, y], ...], ...]`; raises `DrawingError` if they
        cannot be drawn. `want_image`: include the 28×28 the model saw."""
        return await self._ask("strokes", strokes, want_image)

    async def predict_png(self, png: bytes, *, want_image: bool = False) -> Prediction:
        """The model's answer for a PNG drawing; raises `DrawingError` if it cannot be read."""
        return await self._ask("png", png, want_image)

    def answer_frame(self, frame: str) -> asyncio.Future[str]:
        """The `prediction` reply to a raw `predict` frame, written by the worker; fails with its
        `ProtocolError` if refused (a frame that is not a `predict` after all included).

        A future, answered from the batch: the session sends the reply from the future's
        callback, with no task of its own to wake in between (see server/web/websocket.py)."""
        reply: asyncio.Future[str] = self._request("predict", frame, False)
        return reply

    async def explain(self, kind: str, drawing: object) -> Explanation:
        """Where the model looks in a drawing ("strokes", "png" bytes or an "image"): one batched
        session run in the worker, on its own, between batches of guesses (never inside one, so
        it cannot fail or slow another player's batch beyond its turn). Raises `DrawingError`,
        `Overloaded` past `max_explaining` waiting, `ModelError` if the worker is down."""
        if self._closed or self._worker is None:
            raise PredictorClosed("The predictor is not running.")
        if self._explaining >= self._max_explaining:
            raise Overloaded("The model is busy; try again in a moment.")
        worker = self._worker
        if not worker.alive:  # the batcher starts a new one with its next batch
            raise Overloaded("The model is restarting; try again in a moment.")
        self._explaining += 1
        try:
            _, version, outcome = await worker.call(("explain", kind, drawing))
        finally:
            self._explaining -= 1
        if outcome[0] == "refused":
            raise DrawingError(outcome[1], outcome[2])
        _, probs, label, image, heatmap = outcome
        return Explanation(tuple(probs), label, version, image, heatmap)

    # Protocol v2: the drawings held in the worker, one per connection `key` (model_worker.py).
    # A new worker (a swap, a crash) holds none: the connections' next increments are answered
    # `resync` and their clients send the whole drawing again.

    def answer_increments(self, key: int, frames: list[str]) -> asyncio.Future[list[str]]:
        """Apply a connection's v2 drawing messages in order; the replies to send (a future, as
        `answer_frame`'s)."""
        replies: asyncio.Future[list[str]] = self._request("increments", (key, frames), False)
        return replies

    async def held_submission(self, key: int, seq: int) -> HeldSubmission | None:
        """The connection's held drawing, guessed, if it is in step at `seq`, else None."""
        held: HeldSubmission | None = await self._ask("held", (key, seq), True)
        return held

    async def forget(self, key: int) -> None:
        """Free a closed connection's held drawing."""
        await self._ask("forget", key, False)

    async def held_count(self) -> int:
        """How many connections' drawings the worker holds (tests count them)."""
        count: int = await self._ask("held_count", None, False)
        return count

    async def _ask(self, kind: str, drawing: object, want_image: bool) -> Any:
        return await self._request(kind, drawing, want_image)

    def _request(self, kind: str, drawing: object, want_image: bool) -> asyncio.Future[Any]:
        """Queue a request for the next batch; `Overloaded` (now) if too many are waiting."""
        if self._closed or self._batcher is None or self._loop is None:
            raise PredictorClosed("The predictor is not running.")
        # The loop kept from `start`: on Python 3.11 asyncio.get_running_loop() makes a getpid
        # system call, and this runs for every live guess.
        answer: asyncio.Future[Any] = self._loop.create_future()
        try:
            self._queue.put_nowait(_Request(kind, drawing, want_image, answer))
        except asyncio.QueueFull:
            raise Overloaded("The model is busy; try again in a moment.") from None
        return answer

    async def swap(self, model_path: str | Path, version: str) -> None:
        """Serve `model_path` from now on. Raises `ModelError` (and keeps the old model) if bad.

        A new worker loads the new model while the old one keeps serving; then one assignment
        switches, and the old worker stops once its last batch is answered."""
        async with self._swap_lock:
            worker = await self._start_worker(Path(model_path), version)
            old, self._worker = self._worker, worker
            self._model = (Path(model_path), version)
        if old is not None:
            await old.stop()

    async def _start_worker(self, path: Path, version: str) -> _Worker:
        worker = await _Worker.start(self._threads, self._max_batch)
        try:
            await self._load(worker, path, version)
        except BaseException:
            await worker.stop()
            raise
        return worker

    @staticmethod
    async def _load(worker: _Worker, path: Path, version: str) -> None:
        reply = await worker.call(("load", str(path), version))
        if reply[0] != "loaded":
            raise ModelError(reply[1])

    async def _run(self) -> None:
        """Collect a batch and send it, keeping up to IN_FLIGHT batches at the worker: it starts
        the next batch the moment it has answered one, instead of idling while this loop reads
        the answer and collects and sends the next (at saturation that idle time was the
        worker's lost capacity)."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                if len(in_flight) >= IN_FLIGHT:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                batch: list[_Request] = []
                try:
                    await self._collect(batch, in_flight)
                except asyncio.CancelledError:
                    for request in batch:
                        self._fail(request, PredictorClosed("The model server is stopping."))
                    raise
                answering = asyncio.create_task(self._answer(batch))
                in_flight.add(answering)
                answering.add_done_callback(in_flight.discard)
        finally:
            # Cancelled by close(): whoever is still waiting in a batch gets a clear error.
            for answering in in_flight:
                answering.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _collect(self, batch: list[_Request], in_flight: set[asyncio.Task[None]]) -> None:
        """Wait for one request, then for company unless a crowd is waiting already: a batch of
        a few drawings costs much less per drawing than one alone, to draw and to run. While a
        batch is at the worker, the wait ends as soon as it is answered (the worker is free),
        so waiting adds no latency at load."""
        batch.append(await self._queue.get())
        if self._max_wait > 0 and self._queue.qsize() < self._crowd:
            if in_flight:
                await asyncio.wait(
                    in_flight, timeout=self._max_wait, return_when=asyncio.FIRST_COMPLETED
                )
            else:
                await asyncio.sleep(self._max_wait)
        while len(batch) < self._max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    async def _live_worker(self) -> _Worker:
        """The worker, a new one started first if it died (once, for every batch waiting)."""
        async with self._restart_lock:
            assert self._worker is not None
            if not self._worker.alive:
                await self._worker.stop()
                self._worker = await self._start_worker(*self._model)
            return self._worker

    async def _answer(self, batch: list[_Request]) -> None:
        # A cancelled caller (a superseded live guess) needs no answer.
        live = [request for request in batch if not request.answer.done()]
        if not live:
            return
        try:
            worker = await self._live_worker()
            items = [(r.kind, r.drawing, r.want_image) for r in live]
            _, version, outcomes = await worker.call(("batch", items))
        except asyncio.CancelledError:
            for request in live:
                self._fail(request, PredictorClosed("The model server is stopping."))
            raise
        except Exception as exc:  # fail this batch, keep the batcher alive
            for request in live:
                self._fail(request, exc)
            return
        self.batches_run += 1
        for request, (outcome, *details) in zip(live, outcomes, strict=True):
            if request.answer.done():
                continue
            if outcome == "answer":
                probs, label, image = details
                request.answer.set_result(Prediction(tuple(probs), label, version, image))
            elif outcome == "reply":
                request.answer.set_result(details[0])
            elif outcome == "held":
                strokes_json, answer = details
                guess = None
                if answer is not None:
                    _, probs, label, image = answer
                    guess = Prediction(tuple(probs), label, version, image)
                request.answer.set_result(HeldSubmission(strokes_json, guess))
            else:
                code, message, client_id = details
                refusal: Exception = DrawingError(code, message)
                if request.kind == "predict":
                    refusal = ProtocolError(code, message, client_id)
                request.answer.set_exception(refusal)

    @staticmethod
    def _fail(request: _Request, error: BaseException) -> None:
        if not request.answer.done():
            request.answer.set_exception(error)
