"""What a training job is: the JSON file the server writes and the trainer process reads.

The job names everything the trainer needs: where the data lives, which version to fine-tune
from (also the serving model the gate compares against), the extra drawings to train on, the
held-out drawings to judge with, the CPU threads it may use, and the gate's thresholds. Limits
such as `train_limit` and `test_limit` make a tiny job for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.atomic import atomic_write
from server.learning.gate import GateSettings
from server.learning.recipes import DEFAULT_RECIPE, RETRAIN_EPOCHS, recipe_named

Version = Annotated[str, Field(pattern=r"^v[1-9][0-9]*$")]


class JobError(ValueError):
    """A job file that is missing, unreadable or invalid; the message says which field."""


class TrainingJob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: str
    parent: Version | None = None  # fine-tune from (and gate against) this version
    extra_path: str | None = None  # ExampleSet .npz: verified drawings to train on
    heldout_path: str | None = None  # ExampleSet .npz: held-out drawings per round, for the gate
    threads: int = Field(default=1, ge=1, le=64)  # torch and ONNX Runtime threads in the trainer
    epochs: int = Field(default=RETRAIN_EPOCHS, ge=1, le=100)
    lr: float | None = Field(default=None, gt=0, le=1)  # None: the training loop's default
    seed: int = 0
    recipe: str = DEFAULT_RECIPE  # server/learning/recipes.py
    train_limit: int | None = Field(default=None, ge=1)  # only the first N MNIST training digits
    test_limit: int | None = Field(default=None, ge=1)  # first N MNIST test digits (also gate)
    gate: GateSettings = GateSettings()

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, name: str) -> str:
        recipe_named(name)
        return name

    def save(self, path: Path) -> Path:
        """Write the job as JSON to `path` atomically."""
        path = Path(path)
        with atomic_write(path) as f:
            f.write(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> TrainingJob:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise JobError(f"cannot read job file {path}: {exc}") from exc
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'job'}: {e['msg']}" for e in exc.errors()
            )
            raise JobError(f"invalid job file {path}: {problems}") from exc
