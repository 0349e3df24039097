"""The held-out rule: by content, reproducible, about one drawing in five (the packaged rules'
20%), never all of a handful."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from game_rules.heldout import content_key, held_out, learns_from_players, percent_of
from server.config import default_rules

PERCENT = 20  # the packaged rules' retrain.heldout_fraction, as the rule takes it


def keys(count: int, start: int = 0) -> list[str]:
    """Keys of `count` distinct drawings (one lit pixel each, a different brightness)."""
    drawings = []
    for i in range(start, start + count):
        image = np.zeros((28, 28), np.float32)
        image[i % 28, (i // 28) % 28] = 1.0 - (i // 784) / 1000
        drawings.append(content_key(image))
    return drawings


def test_the_split_does_not_depend_on_arrival_order() -> None:
    drawings = keys(500)
    shuffled = [drawings[i] for i in np.random.default_rng(0).permutation(500)]
    first = dict(zip(drawings, held_out(drawings, PERCENT), strict=True))
    second = dict(zip(shuffled, held_out(shuffled, PERCENT), strict=True))
    assert first == second


def test_the_key_is_the_pixels_as_stored() -> None:
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    stored = image.astype("<f4").tobytes()
    assert content_key(np.frombuffer(stored, "<f4")) == content_key(image)
    assert content_key(image.astype(np.float64)) == content_key(image)
    touched = image.copy()
    touched[0, 0] += 0.5
    assert content_key(touched) != content_key(image)


def test_copies_of_a_drawing_land_on_the_same_side() -> None:
    drawings = keys(100)
    doubled = drawings + drawings
    split = held_out(doubled, PERCENT)
    assert split[:100] == split[100:]
    assert split[:100] == held_out(drawings, PERCENT)


def test_the_rule_does_not_depend_on_the_process() -> None:
    # Python's own hash() is salted per process; the rule must not be.
    script = (
        "import numpy as np; from game_rules.heldout import content_key, held_out; "
        "print(held_out([content_key(np.full((28, 28), i / 200, np.float32))"
        " for i in range(200)], 20))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    here = [content_key(np.full((28, 28), i / 200, np.float32)) for i in range(200)]
    assert other.stdout.strip() == str(held_out(here, PERCENT))


def test_about_one_in_five_is_held_out() -> None:
    held = sum(held_out(keys(20_000), PERCENT))
    assert percent_of(default_rules().retrain.heldout_fraction) == PERCENT
    assert 0.18 < held / 20_000 <= 0.2


@pytest.mark.parametrize("count", [1, 2, 3, 4, 9, 10, 14])
def test_a_handful_is_never_all_held_out(count: int) -> None:
    for start in range(0, 2000, count):  # many different handfuls
        held = sum(held_out(keys(count, start), PERCENT))
        assert held <= count * PERCENT // 100


def test_a_drawing_held_out_stays_held_out_once_the_cap_is_loose() -> None:
    drawings = keys(3000)
    early = dict(zip(drawings[:2000], held_out(drawings[:2000], PERCENT), strict=True))
    late = dict(zip(drawings, held_out(drawings, PERCENT), strict=True))
    moved = sum(early[k] != late[k] for k in early)
    assert moved <= 0.02 * len(early)


def test_0_and_100_percent() -> None:
    drawings = keys(50)
    assert not any(held_out(drawings, 0))
    assert all(held_out(drawings, 100))


@pytest.mark.parametrize("percent", [-1, 101])
def test_a_percent_outside_0_to_100_is_refused(percent: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        held_out(keys(3), percent)


def test_a_retrain_learns_from_players_from_the_minimum_on() -> None:
    minimum = default_rules().retrain.min_train_drawings
    assert minimum == 20
    assert not learns_from_players(minimum - 1, minimum)
    assert learns_from_players(minimum, minimum)
