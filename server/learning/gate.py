"""The gate a candidate model must pass before it may serve (ONNX Runtime only, no torch).

Checks, in order:
- integrity: the ONNX file is the one its card describes (sha256) and honours the model contract;
- onnx_parity: the exporter's recorded max |ONNX − torch| on a batch is within tolerance;
- mnist_accuracy: MNIST test accuracy, measured here on the ONNX file itself, is at least a floor;
- mnist_per_class: no digit's MNIST test accuracy falls more than a tolerance below the serving
  model's (a model that learns the players' 9s by misreading 1s as 9s fails here);
- read_right: on the held-out drawings the serving models read right (ordinary human drawings
  with the drawer's label), the candidate is not worse than the serving model by more than a
  tolerance: it still reads what players draw when they are not trying to fool it;
- heldout_round_N: on each round's held-out verified foolings, the candidate reaches an absolute
  floor and is not worse than the serving model by more than a tolerance (the serving model
  scores about 0% on its own round's foolings, so the floor is what judges those).
A check with too few drawings (or digits, per class) to judge says so and passes.

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
    heldout_tolerance: float = 0.02  # accuracy a candidate may lose on a held-out set (0–1)
    heldout_floor: float = 0.5  # accuracy a candidate needs on each round's held-out foolings
    class_tolerance: float = 0.02  # accuracy one MNIST digit may lose against the serving model
    min_class_images: int = 200  # fewer MNIST test images of a digit: that digit is not judged
    read_right_tolerance: float = 0.02  # accuracy it may lose on correctly-read drawings
    min_heldout: int = 10  # fewer held-out drawings than this in a set: too noisy to judge
    parity_tolerance: float = 1e-4

    def __post_init__(self) -> None:
        fractions = (
            self.mnist_floor,
            self.heldout_tolerance,
            self.heldout_floor,
            self.class_tolerance,
            self.read_right_tolerance,
        )
        if not all(0 <= value <= 1 for value in fractions):
            raise ValueError("the gate's floors and tolerances must be within [0, 1]")
        if self.min_class_images < 1:
            raise ValueError("min_class_images must be >= 1")
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


def class_accuracy(session: Any, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy per digit 0..9 (NaN for a digit with no images)."""
    pixels = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    labels = np.asarray(labels)
    guesses = np.concatenate(
        [
            run_batch(session, pixels[start : start + EVAL_BATCH]).argmax(axis=1)
            for start in range(0, len(labels), EVAL_BATCH)
        ]
        or [np.zeros(0, np.int64)]
    )
    right = np.bincount(labels[guesses == labels], minlength=10)[:10]
    total = np.bincount(labels, minlength=10)[:10]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, right / np.maximum(total, 1), np.nan)


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
    serving_session = load_session(serving, threads) if serving is not None else None
    checks.append(_class_check(session, serving_session, mnist_images, mnist_labels, settings))
    if heldout is not None and len(heldout.read_right()):
        checks.append(_read_right_check(heldout.read_right(), session, serving_session, settings))
    if heldout is not None:
        foolings = heldout.foolings()
        for number in foolings.round_numbers():
            checks.append(
                _heldout_check(
                    number, foolings.of_round(number), session, serving_session, settings
                )
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


def _class_check(
    candidate: Any, serving: Any, images: np.ndarray, labels: np.ndarray, settings: GateSettings
) -> Check:
    name = "mnist_per_class"
    if serving is None:
        return Check(name, True, "no serving model to compare the digits with")
    judged = np.bincount(np.asarray(labels), minlength=10)[:10] >= settings.min_class_images
    if not judged.any():
        return Check(
            name,
            True,
            f"fewer than {settings.min_class_images} MNIST test images of every digit: not judged",
        )
    mine = class_accuracy(candidate, images, labels)
    change = np.where(judged, mine - class_accuracy(serving, images, labels), np.inf)
    digit = int(np.argmin(change))
    worst = float(change[digit])
    ok = worst >= -settings.class_tolerance - 1e-12
    before, after = mine[digit] - worst, mine[digit]
    if ok:
        reason = (
            f"no digit fell more than {100 * settings.class_tolerance:g} points on MNIST test "
            f"(worst: {digit}, {100 * before:.1f}% → {100 * after:.1f}%)"
        )
    else:
        reason = (
            f"digit {digit} fell {100 * -worst:.1f} points on MNIST test ({100 * before:.1f}% → "
            f"{100 * after:.1f}%), more than the {100 * settings.class_tolerance:g} allowed"
        )
    return Check(name, ok, reason, worst, -settings.class_tolerance)


def _read_right_check(
    examples: ExampleSet, candidate: Any, serving: Any, settings: GateSettings
) -> Check:
    return _compare(
        "read_right",
        "held-out drawings the model read right",
        examples,
        candidate,
        serving,
        settings.read_right_tolerance,
        settings.min_heldout,
    )


def _heldout_check(
    number: int, examples: ExampleSet, candidate: Any, serving: Any, settings: GateSettings
) -> Check:
    name = f"heldout_round_{number}"
    compared = _compare(
        name,
        f"round {number} held-out foolings",
        examples,
        candidate,
        serving,
        settings.heldout_tolerance,
        settings.min_heldout,
    )
    if compared.threshold is None or not compared.passed or compared.value is None:
        return compared
    floor = settings.heldout_floor
    if compared.value < floor - 1e-12:
        return Check(
            name,
            False,
            f"round {number} held-out foolings: accuracy {compared.value:.4f} < floor {floor:g} "
            f"({len(examples)} drawings): the candidate did not learn this round's foolings",
            compared.value,
            floor,
        )
    reason = f"{compared.reason}; ≥ floor {floor:g}"
    return Check(name, True, reason, compared.value, max(floor, compared.threshold))


def _compare(
    name: str,
    what: str,
    examples: ExampleSet,
    candidate: Any,
    serving: Any,
    tolerance: float,
    minimum: int,
) -> Check:
    """The candidate's accuracy on `examples` against the serving model's, less `tolerance`."""
    mine = accuracy(candidate, examples.images, examples.labels)
    if len(examples) < minimum:
        return Check(
            name,
            True,
            f"{what}: only {len(examples)} (< {minimum}), not judged; accuracy {mine:.4f}",
            mine,
        )
    if serving is None:
        return Check(name, True, f"{what}: no serving model to compare; accuracy {mine:.4f}", mine)
    theirs = accuracy(serving, examples.images, examples.labels)
    threshold = theirs - tolerance
    ok = mine >= threshold - 1e-12
    verdict = "≥" if ok else "<"
    return Check(
        name,
        ok,
        f"{what}: accuracy {mine:.4f} {verdict} serving {theirs:.4f} − tolerance "
        f"{tolerance:g} ({len(examples)} drawings)",
        mine,
        threshold,
    )
