"""A submission's digest (what tells a resend from a new submission) is the digest of
`json.dumps`' text of the label and drawing, as it always was, whichever way it is computed:
digests stored before stay valid, for resends after an upgrade."""

import hashlib
import json
import random

import msgspec

from server.play.game import _fingerprint


def json_dumps_digest(label: int, fields: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps([label, fields], separators=(",", ":")).encode()).hexdigest()


def a_number(rng: random.Random) -> float:
    kind = rng.randrange(5)
    if kind == 0:
        return round(rng.uniform(-1e5, 1e5), rng.randrange(4))  # canvas pixels
    if kind == 1:
        return rng.uniform(-1e5, 1e5)  # every digit a float has
    if kind == 2:
        return rng.uniform(-1, 1) * 10 ** rng.uniform(-12, 5)  # tiny ones: exponents
    if kind == 3:
        return float(rng.randrange(-1000, 1000))
    return rng.choice([0.0, -0.0, 1e-4, 9.999e-5, 1e-5, 100.00001, 1e5, -1e5])


def test_a_strokes_digest_is_that_of_json_dumps_text() -> None:
    rng = random.Random(0)
    for _ in range(3000):
        strokes = [
            [[a_number(rng), a_number(rng)] for _ in range(rng.randrange(1, 6))]
            for _ in range(rng.randrange(1, 4))
        ]
        label = rng.randrange(10)
        digest = _fingerprint(label, None, msgspec.json.encode(strokes))
        assert digest == json_dumps_digest(label, {"strokes": strokes}), strokes


def test_a_png_digest_is_that_of_json_dumps_text() -> None:
    assert _fingerprint(7, "iVBORw0KGgo=", None) == json_dumps_digest(7, {"png": "iVBORw0KGgo="})
