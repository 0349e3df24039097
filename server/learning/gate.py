"""The gate a candidate model must pass before it may serve (ONNX Runtime only, no torch).

Checks, in order:
- integrity: the ONNX file is the one its card describes (sha256) and honours the model contract;
- onnx_parity: the exporter's recorded max |ONNX − torch| on a batch is within tolerance;
- mnist_accuracy: MNIST test accuracy, measured here on the ONNX file itself, is at least a floor;
- heldout_round_N: on each earlier round's held-out verified drawings, the candidate is not worse
  than the serving model by more than a tolerance.

Every check is recorded with its value, threshold and a sentence saying why it passed or failed,
so a rejected candidate says exactly which check failed and by how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.learning.jobs.examples import ExampleSet
from server.serving.inference import ModelError, load_session, run_batch
from server.serving.model_files import ModelCard, sha256_file

EVAL_BATCH = 1000


@dataclass(frozen=True)
class GateSettings:
    mnist_floor: float = 0.985
    heldout_tolerance: float = 0.02  # accuracy points a candidate may lose on a held-out set
    min_heldout: int = 10  # fewer held-out drawings than this in a round: too noisy to judge
    parity_tolerance: float = 1e-4

    def __post_init__(self) -> None:
        if not (0 <= self.mnist_floor <= 1 and 0 <= self.heldout_tolerance <= 1):
            raise ValueError("mnist_floor and heldout_tolerance must be within [0, 1]")
        if self.min_heldout < 1 or not self.parity_tolerance > 0:
            raise ValueError("min_heldout must be >= 1 and parity_tolerance > 0")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reason(self) -> str:
        failed = [check.reason for check in self.checks if not check.passed]
        return "; ".join(failed) if failed else "all checks passed"

    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the model card and the admin API."""
        return {
            "passed": self.passed,
            "reason": self.reason,
            "checks": [asdict(check) for check in self.checks],
        }


def accuracy(session: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of an ONNX session on [N,28,28] images (uint8 or float in [0, 1])."""
    if len(labels) == 0:
        return float("nan")
    pixels = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    correct = 0
    for start in range(0, len(labels), EVAL_BATCH):
        guesses = run_batch(session, pixels[start : start + EVAL_BATCH]).argmax(axis=1)
        correct += int((guesses == np.asarray(labels[start : start + EVAL_BATCH])).sum())
    return correct / len(labels)


def run_gate(
    candidate: Path,
    card: ModelCard,
    *,
    mnist_images: np.ndarray,
    mnist_labels: np.ndarray,
    serving: Path | None = None,
    heldout: ExampleSet | None = None,
    settings: GateSettings | None = None,
    threads: int | None = 1,
) -> GateResult:
    """Judge `candidate` (with its `card`) against the floor and the `serving` model."""
    settings = settings or GateSettings()
    try:
        session = _open_checked(Path(candidate), card, threads)
    except ModelError as exc:
        return GateResult((Check("integrity", False, str(exc)),))
    checks = [Check("integrity", True, "the file matches its card and the model contract")]
    checks.append(_parity_check(card, settings.parity_tolerance))

    mnist = accuracy(session, mnist_images, mnist_labels)
    floor = settings.mnist_floor
    checks.append(
        Check(
            "mnist_accuracy",
            mnist >= floor,
            f"MNIST accuracy {mnist:.4f} {'≥' if mnist >= floor else '<'} floor {floor:g}"
            f" ({len(mnist_labels)} test images)",
            mnist,
            floor,
        )
    )
    if heldout is not None and len(heldout):
        serving_session = load_session(serving, threads) if serving is not None else None
        for number in heldout.round_numbers():
            checks.append(
                _heldout_check(number, heldout.of_round(number), session, serving_session, settings)
            )
    return GateResult(tuple(checks))


def _open_checked(path: Path, card: ModelCard, threads: int | None) -> Any:
    if not path.is_file():
        raise ModelError(f"candidate model {path} does not exist")
    actual = sha256_file(path)
    if actual != card.sha256:
        raise ModelError(
            f"candidate {path.name} has sha256 {actual[:12]}…, but its card says "
            f"{card.sha256[:12]}…: the file is not the model the card describes"
        )
    return load_session(path, threads)


def _parity_check(card: ModelCard, tolerance: float) -> Check:
    recorded = card.gate.get("onnx_parity", {})
    diff = recorded.get("max_abs_diff") if isinstance(recorded, dict) else None
    if not isinstance(diff, int | float):
        return Check("onnx_parity", False, "no ONNX/torch parity was recorded by the exporter")
    ok = diff <= tolerance  # False for NaN too
    sign = "≤" if ok else ">"
    return Check(
        "onnx_parity",
        ok,
        f"ONNX/torch max abs difference {diff:.2e} {sign} tolerance {tolerance:.0e}",
        float(diff),
        tolerance,
    )


def _heldout_check(
    number: int, examples: ExampleSet, candidate: Any, serving: Any, settings: GateSettings
) -> Check:
    name = f"heldout_round_{number}"
    mine = accuracy(candidate, examples.images, examples.labels)
    if len(examples) < settings.min_heldout:
        return Check(
            name,
            True,
            f"round {number}: only {len(examples)} held-out drawings "
            f"(< {settings.min_heldout}), not judged; accuracy {mine:.4f}",
            mine,
        )
    if serving is None:
        return Check(
            name, True, f"round {number}: no serving model to compare; accuracy {mine:.4f}", mine
        )
    theirs = accuracy(serving, examples.images, examples.labels)
    threshold = theirs - settings.heldout_tolerance
    ok = mine >= threshold - 1e-12
    verdict = "≥" if ok else "<"
    return Check(
        name,
        ok,
        f"round {number} held-out accuracy {mine:.4f} {verdict} serving {theirs:.4f} − tolerance "
        f"{settings.heldout_tolerance:g} ({len(examples)} drawings)",
        mine,
        threshold,
    )
