"""The trainer process's report: one JSON object per line on its stdout.

    {"type": "progress", "phase": "training", "epoch": 1, "epochs": 2, "step": 40, "steps": 188,
     "loss": 0.21, "accuracy": 0.93, "eta_seconds": 12.5}
    {"type": "result", "version": "v4", "card_path": ".../v4.json", "model_path": ".../v4.onnx",
     "mnist_test_accuracy": 0.9912, "gate": {"passed": true, "reason": "...", "checks": [...]}}
    {"type": "error", "reason": "cannot fine-tune from v3: .../v3.pt is missing"}

`step` of `steps` counts over all epochs. `phase` is what the job does now: "loading" (data and
weights), "training", "exporting" (ONNX and its checks), "gating"; only "training" has a loss.
Any number of progress lines, then exactly one result or error line, then the process exits.
Both sides use these models, so the format is defined once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_LINE_BYTES = 1 << 20  # a result with every gate check is a few KiB


class ProtocolError(ValueError):
    """A line that is not a trainer message."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Phase = Literal["loading", "training", "exporting", "gating"]


class ProgressMessage(_Message):
    type: Literal["progress"] = "progress"
    phase: Phase = "training"
    epoch: int = Field(ge=1)
    epochs: int = Field(ge=1)
    step: int = Field(ge=0)
    steps: int = Field(ge=1)
    loss: float | None = None
    accuracy: float | None = Field(default=None, ge=0, le=1)
    eta_seconds: float | None = Field(default=None, ge=0)


class ResultMessage(_Message):
    type: Literal["result"] = "result"
    version: str
    card_path: str
    model_path: str
    mnist_test_accuracy: float
    gate: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.gate.get("passed") is True


class ErrorMessage(_Message):
    type: Literal["error"] = "error"
    reason: str


Message = Annotated[ProgressMessage | ResultMessage | ErrorMessage, Field(discriminator="type")]
_ADAPTER: TypeAdapter[ProgressMessage | ResultMessage | ErrorMessage] = TypeAdapter(Message)


def encode(message: ProgressMessage | ResultMessage | ErrorMessage) -> bytes:
    return message.model_dump_json().encode() + b"\n"


def decode(line: bytes) -> ProgressMessage | ResultMessage | ErrorMessage:
    """Parse one line; ProtocolError quotes the start of anything that is not a message."""
    try:
        return _ADAPTER.validate_json(line)
    except ValidationError as exc:
        shown = line[:120].decode("utf-8", "replace").strip()
        raise ProtocolError(
            f"unreadable trainer output {shown!r}: {exc.errors()[0]['msg']}"
        ) from exc
