"""The model worker process: `python -m server.serving.model_worker THREADS WARM_BATCH`.

Started by `server.serving.inference.Predictor`, it reads messages from its stdin and answers each
on its stdout, in order. A message is a 4-byte big-endian length, then a pickle:

- `("load", path, version)` → `("loaded", version)`, or `("error", message)` keeping the old model;
- `("batch", [(kind, drawing, want_image), ...])` → `("batch", version, [outcome, ...])`, or
  `("failed", exception)` if the batch as a whole failed;
- `("explain", kind, drawing)` → `("explain", version, outcome)`: where the model looked
  (server/serving/saliency.py), one session run on its own, never inside a batch of guesses.

A drawing's `kind` is "image" (a [28, 28] array), "strokes" (`[[[x, y], ...], ...]`), "png"
(bytes) or "predict": a raw `predict` frame from a player, answered whole here (parsed by
`server.realtime.protocol.parse`, drawn, guessed, and its `prediction` reply written), so that the
event loop only moves bytes. Each outcome is one of:

- `("answer", probs, label, image or None)` for an image, strokes or a PNG;
- `("reply", text)` for a frame;
- `("refused", code, message, id)`: a drawing that cannot be drawn, or a frame that is refused;
- `("explained", probs, label, image, heatmap)` for an explanation.

Protocol v2 keeps each connection's drawing here, between batches (`HeldDrawing`, keyed by the
connection's number), so that a guess draws only the segments added since the last one:

- "increments", `(key, [frame, ...])`: a connection's v2 drawing messages in the order received,
  applied in order; the drawing is guessed once if any of them asked (latest wins) →
  `("reply", [reply text, ...])` (a `prediction`, `resync`s, `error`s);
- "held", `(key, seq)`: a submission of the held drawing. If it is in step at `seq`,
  `("held", strokes JSON, answer)`: the strokes as msgspec's JSON (what is stored) and the
  model's `("answer", probs, label, image)`, drawn and guessed in the batch like any drawing
  (None for an empty drawing); else `("reply", None)`;
- "forget", key: the connection closed, its drawing is freed; "held_count": how many are held.

All of a batch's strokes (v1's and v2's) are drawn in one `render` call; each item is isolated
from the others (a drawing that fails is refused alone, `bad_drawing`). The worker exits when its
stdin closes. Only the parent writes to it (pickle is trusted here).
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

import msgspec
import numpy as np
import onnxruntime as ort

from server.realtime.protocol import (
    PngDrawing,
    Predict,
    ProtocolError,
    encode,
    parse,
    parse_increment,
    rounded,
)
from server.realtime.protocol import error as error_reply
from server.serving.held import RESYNC, HeldDrawing
from server.serving.inference import ModelError, load_session, run_batch
from server.serving.preprocess import (
    DrawingError,
    Raster,
    Strokes,
    parse_strokes,
    png_from_base64,
    png_to_image,
    render,
)
from server.serving.saliency import CORNERS, explain

HELD: dict[int, HeldDrawing] = {}  # each v2 connection's drawing, by the connection's key


def infer(
    session: ort.InferenceSession, version: str, items: list[tuple[str, Any, bool]]
) -> list[tuple[Any, ...]]:
    """Draw the batch's drawings, run the model on them, and say what became of each.

    Every item is isolated from the others: whatever goes wrong with one drawing (a refusal, or a
    bug the drawing triggers) is refused as that item's `bad_drawing`, and the rest of the batch
    is answered. One player's drawing must never fail another player's guess.
    """
    images = np.zeros((len(items), 28, 28), dtype=np.float32)
    outcomes: list[tuple[Any, ...]] = [()] * len(items)  # () until decided
    frames: dict[int, str | None] = {}  # the client id of each frame to reply to
    drawings: list[Strokes] = []
    drawn: list[int] = []

    def refuse(index: int, code: str, message: str) -> None:
        outcomes[index] = ("refused", code, message, frames.get(index))

    replies: dict[int, list[str]] = {}  # v2: each item's replies so far
    guessed: dict[int, tuple[HeldDrawing, str | None]] = {}  # v2: to guess, with the reply id
    submitted: dict[int, bytes] = {}  # v2: held drawings submitted, with their strokes' JSON
    for index, (kind, drawing, _) in enumerate(items):
        try:
            if kind == "held":
                held = _in_step(*drawing)
                if held is None:
                    outcomes[index] = ("reply", None)
                elif held.empty:
                    outcomes[index] = ("held", _EMPTY_STROKES, None)
                else:
                    submitted[index] = msgspec.json.encode(held.as_lists())
                    guessed[index] = (held, None)
                continue
            if kind in _HELD_KINDS:
                outcomes[index] = ("reply", _held_request(kind, drawing))
                continue
            if kind == "increments":
                key, texts = drawing
                held = HELD.get(key) or HELD.setdefault(key, HeldDrawing())
                replies[index], asked = _apply(held, texts)
                if asked is not None:
                    guessed[index] = (held, asked[0])
                continue
            if kind == "predict":
                message = parse(drawing)
                if not isinstance(message, Predict):  # (the session routes by the frame's start)
                    wrong = "This frame starts as a `predict` but is not one."
                    raise ProtocolError("bad_message", wrong, message.id)
                frames[index] = message.id
                if isinstance(message.drawing, PngDrawing):
                    kind, drawing = "png", png_from_base64(message.drawing.png)
                else:
                    kind, drawing = "strokes", message.drawing.strokes
            if kind == "strokes":
                drawings.append(parse_strokes(drawing))
                drawn.append(index)
            elif kind == "png":
                images[index] = png_to_image(drawing)
            else:
                images[index] = drawing
        except ProtocolError as refused:
            outcomes[index] = ("refused", refused.code, refused.message, refused.id)
        except DrawingError as error:
            refuse(index, error.code, error.message)
        except Exception as error:  # a drawing that breaks the code: its own failure only
            print(f"model worker: drawing {kind} failed: {error!r}", file=sys.stderr)
            refuse(index, "bad_drawing", _UNDRAWABLE)

    def undrawable(index: int) -> None:
        if index in submitted:
            del submitted[index], guessed[index]
            refuse(index, "bad_drawing", _UNDRAWABLE)
        elif index in guessed:
            replies[index].append(
                encode(error_reply("bad_drawing", _UNDRAWABLE, guessed.pop(index)[1]))
            )
        elif not outcomes[index]:
            refuse(index, "bad_drawing", _UNDRAWABLE)

    rasters = [Raster() for _ in drawings]  # v1: drawn from scratch
    for index, (held, _) in guessed.items():  # v2: drawn on from where they were
        drawings.append(held.strokes)
        rasters.append(held.raster)
        drawn.append(index)
    if drawings:
        _render_each(drawings, rasters, drawn, images, undrawable)
    unfinished = ~np.isfinite(images).all(axis=(1, 2))
    for index in np.flatnonzero(unfinished).tolist():
        images[index] = 0.0
        undrawable(index)
    # The model runs on the drawings to guess (not on v2 messages that asked for none).
    wanted = [
        i for i, done in enumerate(outcomes) if not done and (i not in replies or i in guessed)
    ]
    probs = run_batch(session, images[wanted]) if wanted else np.zeros((0, 10), np.float32)
    row = {index: k for k, index in enumerate(wanted)}
    rows, labels = probs.tolist(), probs.argmax(axis=1).tolist()
    replies_probs = rounded(probs)
    for index, (_, _, want_image) in enumerate(items):
        if outcomes[index]:
            continue
        k = row.get(index, 0)  # its row of model answers (none for a v2 item guessing nothing)
        answer = {"probs": replies_probs[k], "label": labels[k], "model_version": version} if (
            index in row) else {}  # fmt: skip
        if index in submitted:
            image = images[index]
            outcomes[index] = ("held", submitted[index], ("answer", rows[k], labels[k], image))
        elif index in replies:
            if index in guessed:
                held, id = guessed[index]
                prediction = {"type": "prediction", "id": id, "seq": held.seq, **answer}
                replies[index].append(encode(prediction))
            outcomes[index] = ("reply", replies[index])
        elif index in frames:
            outcomes[index] = (
                "reply",
                encode({"type": "prediction", "id": frames[index], **answer}),
            )
        else:
            image = images[index] if want_image else None
            outcomes[index] = ("answer", rows[k], labels[k], image)
    return outcomes


_UNDRAWABLE = "This drawing cannot be drawn; draw it again."
_HELD_KINDS = ("forget", "held_count")
_EMPTY_STROKES = b"[]"


def _apply(held: HeldDrawing, texts: list[str]) -> tuple[list[str], tuple[str | None] | None]:
    """Apply a connection's v2 messages in order: the replies owed (`resync`, `error`), and
    `(id,)` of the latest that asked for a guess if the drawing is then in step and not empty
    (`empty_drawing` if that message itself left it empty; none if a later one emptied it).
    Each message is isolated: a refused one changes nothing (see server/serving/held.py)."""
    replies: list[str] = []
    asked: tuple[str | None] | None = None
    for text in texts:
        try:
            message = parse_increment(text)
            if held.apply(message) == RESYNC:
                replies.append(encode({"type": "resync", "id": message.id, "seq": message.seq}))
                asked = None
                continue
        except ProtocolError as refused:
            replies.append(encode(error_reply(refused.code, refused.message, refused.id)))
            continue
        except DrawingError as refused:
            replies.append(encode(error_reply(refused.code, refused.message, message.id)))
            continue
        if message.guess:
            asked = (message.id,)
        elif held.empty:  # what was asked about was taken away since (a `clear`): superseded
            asked = None
    if asked is not None and held.empty:
        empty = "The drawing is empty: draw a digit first."
        replies.append(encode(error_reply("empty_drawing", empty, asked[0])))
        asked = None
    return replies, asked


def _held_request(kind: str, drawing: Any) -> Any:
    if kind == "forget":
        HELD.pop(drawing, None)
        return None
    return len(HELD)  # "held_count"


def _in_step(key: int, seq: int) -> HeldDrawing | None:
    """The connection's held drawing if it is in step at `seq` (what its client has)."""
    held = HELD.get(key)
    if held is None or not held.synced or held.seq != seq:
        return None
    return held


def _render_each(
    drawings: list[Strokes],
    rasters: list[Raster],
    drawn: list[int],
    images: np.ndarray,
    undrawable: Callable[[int], None],
) -> None:
    """Draw the batch's strokes in one `render` call (much cheaper per drawing); should that
    fail, draw them one by one so that only the drawing at fault is refused."""
    try:
        images[drawn] = render(drawings, rasters)
        return
    except Exception as error:
        print(f"model worker: batch render failed, drawing alone: {error!r}", file=sys.stderr)
    for index, drawing, raster in zip(drawn, drawings, rasters, strict=True):
        try:
            images[index] = render([drawing], [raster])[0]
        except Exception:
            raster.reset()
            undrawable(index)


def explain_drawing(session: ort.InferenceSession, kind: str, drawing: Any) -> tuple[Any, ...]:
    """Draw one drawing ("strokes", "png" or "image") and say where the model looked."""
    try:
        if kind == "strokes":
            image = render([parse_strokes(drawing)])[0]
        elif kind == "png":
            image = png_to_image(drawing)
        else:
            image = np.asarray(drawing, dtype=np.float32).reshape(28, 28)
        if not np.isfinite(image).all():
            raise DrawingError("bad_drawing", _UNDRAWABLE)
    except DrawingError as error:
        return ("refused", error.code, error.message, None)
    except Exception as error:
        print(f"model worker: drawing {kind} failed: {error!r}", file=sys.stderr)
        return ("refused", "bad_drawing", _UNDRAWABLE, None)
    seen = explain(image, lambda batch: run_batch(session, batch))
    return ("explained", seen.probs.tolist(), seen.label, image, seen.heatmap)


def warm(session: ort.InferenceSession, batch: int) -> None:
    """The first runs at a new batch size allocate; pay for that before serving."""
    for size in {1, batch, 1 + len(CORNERS)}:  # the last: an explanation's batch
        run_batch(session, np.zeros((size, 28, 28), dtype=np.float32))


def serve(source: BinaryIO, sink: BinaryIO, threads: int | None, warm_batch: int) -> None:
    session: ort.InferenceSession | None = None
    version = ""
    while len(head := source.read(4)) == 4:
        message = pickle.loads(source.read(int.from_bytes(head, "big")))
        reply: tuple[Any, ...]
        if message[0] == "load":
            _, path, new_version = message
            try:
                new_session = load_session(path, threads)
                warm(new_session, warm_batch)
            except ModelError as error:
                reply = ("error", str(error))
            else:
                session, version = new_session, new_version
                reply = ("loaded", version)
        else:
            try:
                assert session is not None, "load a model first"
                if message[0] == "explain":
                    reply = ("explain", version, explain_drawing(session, *message[1:]))
                else:
                    reply = ("batch", version, infer(session, version, message[1]))
            except Exception as error:
                reply = ("failed", error)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # an exception that does not pickle
            data = pickle.dumps(("failed", RuntimeError(f"{reply[1]!r} ({error})")))
        sink.write(len(data).to_bytes(4, "big") + data)
        sink.flush()


def main() -> None:
    threads, warm_batch = int(sys.argv[1]) or None, int(sys.argv[2])
    # The replies own the real stdout; anything a library prints goes to stderr instead.
    sink = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # The server's Ctrl-C reaches its children too; the server stops this worker itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()  # the imported modules live as long as the worker: no collection walks them
    serve(sys.stdin.buffer, sink, threads, warm_batch)


if __name__ == "__main__":
    main()
