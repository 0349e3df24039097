"""The figures that show whether each round's model is harder to fool (ONNX Runtime, no torch).

Per model version: MNIST test accuracy (from its card), accuracy on each round's held-out
verified drawings (measured here), and over the rounds it served: attempts, claims, verified
fools, MER (claims / attempts) and vMER (verified fools / attempts, as Dynabench defines it).
`GET /api/models/metrics` serves these rows to the chart; `fool-the-model models` prints them.
"""

from __future__ import annotations

import math
from typing import Any

from server.config import DataLayout
from server.learning.data import RoundStats
from server.learning.gate import accuracy
from server.learning.jobs.examples import ExampleSet
from server.serving.inference import ModelError, load_session
from server.serving.model_store import ModelRow


def model_metrics(
    models: list[ModelRow],
    rounds: list[RoundStats],
    heldout: dict[str, dict[str, float]],
) -> list[dict[str, Any]]:
    """One row per model that may serve (rejected candidates are left out), oldest first;
    `heldout` maps a version to its accuracy per round (see `heldout_accuracy`)."""
    rows = []
    for model in models:
        if not model.accepted:
            continue
        served = [r for r in rounds if r.model_version == model.version]
        attempts = sum(r.attempts for r in served)
        claims = sum(r.claims for r in served)
        verified = sum(r.verified for r in served)
        rows.append(
            {
                "version": model.version,
                "status": model.status,
                "mnist_accuracy": model.mnist_accuracy,
                "heldout": heldout.get(model.version, {}),
                "rounds": [r.number for r in served],
                "attempts": attempts,
                "claims": claims,
                "verified": verified,
                "mer": claims / attempts if attempts else None,
                "vmer": verified / attempts if attempts else None,
            }
        )
    return rows


def heldout_accuracy(
    layout: DataLayout, version: str, heldout: ExampleSet, threads: int = 1
) -> dict[str, float]:
    """The model's accuracy on each round's held-out verified foolings, keyed by round number."""
    heldout = heldout.foolings()
    if not len(heldout):
        return {}
    try:
        session = load_session(layout.model_path(version), threads)
    except ModelError:
        return {}  # the file is gone: the registry row still shows the model
    return {
        str(number): accuracy(session, part.images, part.labels)
        for number in heldout.round_numbers()
        if len(part := heldout.of_round(number))
    }


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def models_table(models: list[ModelRow], metrics: list[dict[str, Any]]) -> str:
    by_version = {m["version"]: m for m in metrics}
    rows = []
    for model in models:
        m = by_version.get(model.version, {})
        heldout = ", ".join(f"r{n} {_pct(a)}" for n, a in m.get("heldout", {}).items())
        rows.append(
            [
                model.version,
                model.status,
                model.parent or "–",
                _pct(model.mnist_accuracy),
                heldout or "–",
                ",".join(str(n) for n in m.get("rounds", [])) or "–",
                _pct(m.get("vmer")),
                "" if model.accepted else str(model.gate.get("reason", "")),
            ]
        )
    header = ["version", "status", "parent", "MNIST", "held-out", "rounds", "vMER", "gate"]
    return format_table(header, rows)


def rounds_table(rounds: list[RoundStats]) -> str:
    rows = [
        [
            str(r.number),
            r.state,
            r.model_version,
            str(r.attempts),
            str(r.claims),
            str(r.verified),
            _pct(r.mer),
            _pct(r.vmer),
        ]
        for r in rounds
    ]
    header = ["round", "state", "model", "attempts", "claims", "verified", "MER", "vMER"]
    return format_table(header, rows)
