"""The websocket protocol (docs/protocol.md): client messages parsed and validated, replies built.

`parse(text)` turns one frame into a typed message or raises `ProtocolError` with the stable
error code the client will see. Validation is strict: `"7"` is not a label and `1` is not `true`.

`parse` is total: whatever the frame, it returns a message or raises `ProtocolError`, never
anything else (a RecursionError from a deeply nested frame once ended the connection). Frames are
bounded before anything builds objects from them: at most MAX_FRAME_CHARS long, nested at most
MAX_DEPTH deep (a message needs 5 levels), with one `type` key. The typed fast path (msgspec, for
drawings) is bounded by its schema, so it runs first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 2  # the newest; 1 (whole drawings in every `predict`) is still served
PROTOCOL_VERSIONS = (1, 2)

MAX_FRAME_CHARS = 64 * 1024  # as uvicorn's frame limit (Limits.max_message_bytes)
MAX_DEPTH = 16  # of nested objects and arrays; a message needs 5 (message, drawing, strokes...)

ClientId = Annotated[str, Field(max_length=64)]
Point = Annotated[list[float], Field(min_length=2, max_length=2)]


class ProtocolError(Exception):
    """A request the server refuses; `code` is stable, `message` is for humans."""

    def __init__(self, code: str, message: str, id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StrokesDrawing(_Message):
    strokes: list[list[Point]]


class PngDrawing(_Message):
    png: str  # base64


Drawing = StrokesDrawing | PngDrawing


class Hello(_Message):
    type: Literal["hello"]
    v: int
    id: ClientId | None = None
    name: str | None = None
    token: str | None = None
    spectator: bool = False


class Predict(_Message):
    type: Literal["predict"]
    id: ClientId | None = None
    drawing: Drawing


class Submit(_Message):
    type: Literal["submit"]
    id: ClientId | None = None
    drawing: Drawing | None = None  # None: the drawing held at `seq` (protocol v2)
    seq: int | None = None
    label: int  # 0–9, checked by the game so a bad value gets `bad_label`


class Explain(_Message):
    type: Literal["explain"]
    id: ClientId | None = None
    drawing: Drawing


class Task(_Message):
    type: Literal["task"]
    id: ClientId | None = None


class Vote(_Message):
    type: Literal["vote"]
    id: ClientId | None = None
    task_id: str
    answer: int | Literal["x"]


class Leaderboard(_Message):
    type: Literal["leaderboard"]
    id: ClientId | None = None
    board: Literal["round", "all", "validators"]


class Ping(_Message):
    type: Literal["ping"]
    id: ClientId | None = None


ClientMessage = Annotated[
    Hello | Predict | Submit | Explain | Task | Vote | Leaderboard | Ping,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class _FastStrokes(msgspec.Struct, forbid_unknown_fields=True):
    strokes: list[list[Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]]]


class _FastPredict(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="predict"):
    drawing: _FastStrokes
    id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _FastSubmit(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="submit"):
    label: int
    drawing: _FastStrokes | None = None  # None: the drawing held at `seq` (protocol v2)
    seq: int | None = None
    id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _Envelope(msgspec.Struct):
    id: Any = None


# Drawings are most of the traffic. msgspec checks a well-formed `predict` or `submit` (with
# strokes, or protocol v2's `seq`) in a fraction of pydantic's time; it accepts only what the
# models above accept (anything else, and every other message, takes the pydantic path, which
# also words the errors).
_fast_drawing = msgspec.json.Decoder(_FastPredict | _FastSubmit)
_envelope = msgspec.json.Decoder(_Envelope)


# Protocol v2: the drawing is held by the server and changed by increments, each numbered by
# `seq` (docs/protocol.md, "Drawing incrementally"). They are parsed where the drawing is held,
# in the model worker (server/serving/held.py), by this strict schema.

_Seq = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
_Id = Annotated[str, msgspec.Meta(max_length=64)]
_Points = Annotated[
    list[Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]],
    msgspec.Meta(min_length=1),
]


class _Increment(msgspec.Struct, forbid_unknown_fields=True, tag_field="type"):
    seq: _Seq
    id: _Id | None = None
    guess: bool = False  # answer with a `prediction` for the drawing after this message


class StrokeStart(_Increment, tag="stroke_start"):
    """A new stroke, with its first points."""

    points: _Points = msgspec.field(default_factory=list)


class AddPoints(_Increment, tag="points"):
    """Points added to the last stroke."""

    points: _Points = msgspec.field(default_factory=list)


class Undo(_Increment, tag="undo"):
    """The last stroke taken away (nothing, on an empty drawing)."""


class Clear(_Increment, tag="clear"):
    """Everything taken away."""


class Redraw(_Increment, tag="drawing"):
    """The whole drawing at once: the answer to `resync` (and a way to start)."""

    strokes: list[list[Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]]] = (
        msgspec.field(default_factory=list)
    )


Increment = StrokeStart | AddPoints | Undo | Clear | Redraw
INCREMENTS = (StrokeStart, AddPoints, Undo, Clear, Redraw)
INCREMENT_TYPES = ("stroke_start", "points", "undo", "clear", "drawing")
_increment = msgspec.json.Decoder(Increment)


def encode_increment(message: Increment) -> str:
    return msgspec.json.encode(message).decode()


def parse_increment(text: str) -> Increment:
    """One v2 drawing message, or `ProtocolError` (bad_message) saying what is wrong with it."""
    if len(text) > MAX_FRAME_CHARS:
        raise ProtocolError("bad_message", f"The frame is over {MAX_FRAME_CHARS // 1024} KiB.")
    try:
        message: Increment = _increment.decode(text)
    except (msgspec.MsgspecError, RecursionError) as error:
        raise ProtocolError("bad_message", str(error), client_id(text)) from None
    if isinstance(message, StrokeStart | AddPoints) and not message.points:
        raise ProtocolError("bad_message", "`points` needs at least one point.", message.id)
    return message


MESSAGE_TYPES = ("hello", "predict", "submit", "explain", "task", "vote", "leaderboard", "ping")


def _client_id(raw: dict[str, Any]) -> str | None:
    value = raw.get("id")
    return value if isinstance(value, str) and len(value) <= 64 else None


def _client_id_of(text: str) -> str | None:
    """The `id` of a frame refused for its shape, found without parsing it."""
    found = _ID.search(text)
    return found.group(1) if found else None


_ID = re.compile(r'"id"\s*:\s*"([^"\\]{0,64})"')


def client_id(text: str) -> str | None:
    """A frame's `id`, if it has a usable one: for an error about a frame not parsed yet."""
    if isinstance(text, bytes) or _shape_problem(text) is not None:
        return None
    try:
        value = _envelope.decode(text).id
    except (msgspec.MsgspecError, RecursionError):
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None


# Strings, left to right; `"type"` itself is kept (as group 1), every other string dropped.
_STRING = re.compile(r'("type")|"(?:[^"\\]|\\.)*"')
_TYPE_KEY = re.compile(r'"type"\s*:')
_OPENS, _CLOSES = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def _shape_problem(text: str) -> str | None:
    """Why a frame is refused before it is parsed (too long, too deep, two `type`s), or None.

    Cheap on what real clients send (regular expressions and numpy over the text, no objects
    built), and it runs before any parser that builds objects without a schema."""
    if len(text) > MAX_FRAME_CHARS:
        return f"The frame is over {MAX_FRAME_CHARS // 1024} KiB."
    outside = _STRING.sub(r"\1", text)  # brackets and `"type":` inside strings do not count
    if len(_TYPE_KEY.findall(outside)) > 1:
        return "The message has more than one `type`; send exactly one."
    codes = np.frombuffer(outside.encode("utf-8", "replace"), np.uint8)
    steps = np.isin(codes, _OPENS).astype(np.int32) - np.isin(codes, _CLOSES)
    if steps.size and int(np.cumsum(steps).max()) > MAX_DEPTH:
        return f"The frame nests deeper than {MAX_DEPTH} levels; a message needs 5."
    return None


def _describe(error: ValidationError, raw: dict[str, Any]) -> str:
    """The first problem, worded for a person. A drawing is either form: the problems reported
    are those of the form the client sent (`{"png": 12345}` is about `png`, not `strokes`)."""
    problems = error.errors()
    drawing = raw.get("drawing")
    if isinstance(drawing, dict):
        form = "PngDrawing" if "png" in drawing and "strokes" not in drawing else "StrokesDrawing"
        problems = [p for p in problems if form in p["loc"]] or problems
    first = problems[0]
    loc = first["loc"][1:]  # the first part is the message type
    where = ".".join(str(part) for part in loc if not str(part).endswith("Drawing"))
    return f"{where or 'message'}: {first['msg']}"


def parse(text: str | bytes) -> ClientMessage | Increment:
    """Validate one frame; raise `ProtocolError` (bad_json, unknown_type, bad_message) and
    nothing else, whatever the frame."""
    try:
        return _parse(text)
    except ProtocolError:
        raise
    except (RecursionError, ValueError, TypeError) as error:  # a backstop: refused, not a crash
        raise ProtocolError("bad_json", f"The frame cannot be read ({error}).") from None


def _parse(text: str | bytes) -> ClientMessage | Increment:
    if isinstance(text, bytes):
        raise ProtocolError("bad_json", "Send JSON text frames, not binary ones.")
    if text.count('"type"') > 1 and (problem := _shape_problem(text)):
        raise ProtocolError("bad_message", problem, _client_id_of(text))
    try:
        fast = _fast_drawing.decode(text)
    except msgspec.MsgspecError:
        pass
    else:
        drawing = fast.drawing and StrokesDrawing.model_construct(strokes=fast.drawing.strokes)
        if isinstance(fast, _FastSubmit):
            return Submit.model_construct(
                type="submit", id=fast.id, drawing=drawing, seq=fast.seq, label=fast.label
            )
        return Predict.model_construct(type="predict", id=fast.id, drawing=drawing)
    if problem := _shape_problem(text):
        code = "bad_message" if "`type`" in problem else "bad_json"
        raise ProtocolError(code, problem, _client_id_of(text))
    try:
        # The usual path: pydantic parses and validates the JSON in one pass.
        return _adapter.validate_json(text)
    except ValidationError:
        pass
    # Something is wrong: work out what, to say so precisely.
    try:
        raw = json.loads(text)
    except ValueError:
        raise ProtocolError("bad_json", "The frame is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise ProtocolError("bad_json", "A message must be a JSON object with a `type`.")
    client_id = _client_id(raw)
    kind = raw.get("type")
    if "type" not in raw:
        raise ProtocolError("bad_message", "The message has no `type`.", client_id)
    if kind in INCREMENT_TYPES:  # v2 (the session checks the version)
        return parse_increment(text)
    if kind not in MESSAGE_TYPES:
        known = ", ".join(MESSAGE_TYPES)
        raise ProtocolError("unknown_type", f"Unknown type {kind!r}; one of: {known}.", client_id)
    try:
        _adapter.validate_python(raw)
    except ValidationError as error:
        raise ProtocolError("bad_message", _describe(error, raw), client_id) from None
    raise ProtocolError("bad_message", "The message does not match its type.", client_id)


# Server → client. Each builder returns the JSON-ready dict of one message.


def error(code: str, message: str, id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "id": id, "code": code, "message": message}


def rounded(probs: Sequence[float] | np.ndarray) -> list[Any]:
    """Probabilities to 5 decimals, as (nested) lists: a batch's rows at once, or one row."""
    rows: list[Any] = np.round(np.asarray(probs, dtype=np.float64), 5).tolist()
    return rows


_encoder = msgspec.json.Encoder()


def encode(message: dict[str, Any]) -> str:
    """A server message as JSON text. (msgspec: a few times faster than `json.dumps`, which
    counts for replies sent thousands of times a second.)"""
    return _encoder.encode(message).decode()
