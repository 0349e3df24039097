"""The websocket protocol (docs/protocol.md): client messages parsed and validated, replies built.

`parse(text)` turns one frame into a typed message or raises `ProtocolError` with the stable
error code the client will see. Validation is strict: `"7"` is not a label and `1` is not `true`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1

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
    drawing: Drawing
    label: int  # 0–9, checked by the game so a bad value gets `bad_label`


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
    Hello | Predict | Submit | Task | Vote | Leaderboard | Ping, Field(discriminator="type")
]
_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class _FastStrokes(msgspec.Struct, forbid_unknown_fields=True):
    strokes: list[list[Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]]]


class _FastPredict(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="predict"):
    drawing: _FastStrokes
    id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _FastSubmit(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="submit"):
    drawing: _FastStrokes
    label: int
    id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _Envelope(msgspec.Struct):
    id: Any = None


# Drawings are most of the traffic. msgspec checks a well-formed `predict` or `submit` with
# strokes in a fraction of pydantic's time; it accepts only what the models above accept
# (anything else, and every other message, takes the pydantic path, which also words the errors).
_fast_drawing = msgspec.json.Decoder(_FastPredict | _FastSubmit)
_envelope = msgspec.json.Decoder(_Envelope)
MESSAGE_TYPES = ("hello", "predict", "submit", "task", "vote", "leaderboard", "ping")


def _client_id(raw: dict[str, Any]) -> str | None:
    value = raw.get("id")
    return value if isinstance(value, str) and len(value) <= 64 else None


def client_id(text: str) -> str | None:
    """A frame's `id`, if it has a usable one: for an error about a frame not parsed yet."""
    try:
        value = _envelope.decode(text).id
    except msgspec.MsgspecError:
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = first["loc"][1:]  # the first part is the message type
    where = ".".join(str(part) for part in loc if not str(part).endswith("Drawing"))
    return f"{where or 'message'}: {first['msg']}"


def parse(text: str | bytes) -> ClientMessage:
    """Validate one frame; raise `ProtocolError` (bad_json, unknown_type, bad_message)."""
    if isinstance(text, bytes):
        raise ProtocolError("bad_json", "Send JSON text frames, not binary ones.")
    try:
        fast = _fast_drawing.decode(text)
    except msgspec.MsgspecError:
        pass
    else:
        drawing = StrokesDrawing.model_construct(strokes=fast.drawing.strokes)
        if isinstance(fast, _FastSubmit):
            return Submit.model_construct(
                type="submit", id=fast.id, drawing=drawing, label=fast.label
            )
        return Predict.model_construct(type="predict", id=fast.id, drawing=drawing)
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
    if kind not in MESSAGE_TYPES:
        known = ", ".join(MESSAGE_TYPES)
        raise ProtocolError("unknown_type", f"Unknown type {kind!r}; one of: {known}.", client_id)
    try:
        _adapter.validate_python(raw)
    except ValidationError as error:
        raise ProtocolError("bad_message", _describe(error), client_id) from None
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
