"""Protocol v2's held drawing: sent piece by piece it renders bit for bit as the same drawing sent
whole, and a message out of step is never applied (the answer is a resync, never a wrong guess)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from serving_helpers import SEVEN

from server.realtime.protocol import AddPoints, Clear, Redraw, StrokeStart, Undo
from server.serving.held import RESYNC, HeldDrawing
from server.serving.preprocess import (
    MAX_POINTS,
    DrawingError,
    Raster,
    parse_strokes,
    render,
)


def whole(strokes: list[list[list[float]]]) -> np.ndarray:
    return render([parse_strokes(strokes)])[0]


def held_image(held: HeldDrawing) -> np.ndarray:
    return render([held.strokes], [held.raster])[0]


def random_digit(rng: random.Random) -> list[list[list[float]]]:
    strokes = []
    for _ in range(rng.randint(1, 4)):
        x, y = rng.uniform(0, 280), rng.uniform(0, 280)
        stroke = []
        for _ in range(rng.randint(1, 60)):
            x += rng.uniform(-12, 12)
            y += rng.uniform(-12, 12)
            stroke.append([round(x, 1), round(y, 1)])
        strokes.append(stroke)
    return strokes


def send_in_pieces(
    strokes: list[list[list[float]]], rng: random.Random, guess_every_piece: bool
) -> tuple[HeldDrawing, list[np.ndarray]]:
    """Stream a drawing as stroke_start/points messages of random sizes, guessing as we go."""
    held, seq, guesses = HeldDrawing(), 0, []
    for stroke in strokes:
        cut = rng.randint(1, len(stroke))
        seq += 1
        assert held.apply(StrokeStart(seq=seq, points=stroke[:cut])) is None
        while cut < len(stroke):
            if guess_every_piece:
                guesses.append(held_image(held))
            step = rng.randint(1, 7)
            seq += 1
            assert held.apply(AddPoints(seq=seq, points=stroke[cut : cut + step])) is None
            cut += step
    return held, guesses


@pytest.mark.parametrize("seed", range(40))
def test_a_drawing_sent_in_pieces_renders_bit_identical_to_it_sent_whole(seed):
    rng = random.Random(seed)
    strokes = random_digit(rng)
    held, guesses = send_in_pieces(strokes, rng, guess_every_piece=True)
    assert np.array_equal(held_image(held), whole(strokes))
    assert held.as_lists() == strokes
    # Every guess along the way was of exactly the drawing so far.
    assert all(np.isfinite(g).all() for g in guesses)


def test_each_guess_along_the_way_is_the_drawing_so_far():
    rng = random.Random(7)
    held, seq = HeldDrawing(), 1
    held.apply(StrokeStart(seq=1, points=SEVEN[0][:1]))
    for n in range(2, len(SEVEN[0]) + 1):
        seq += 1
        held.apply(AddPoints(seq=seq, points=[SEVEN[0][n - 1]]))
        assert np.array_equal(held_image(held), whole([SEVEN[0][:n]])), n
    del rng


def test_undo_and_clear_render_what_is_left():
    held = HeldDrawing()
    a, b = [[0, 0], [50, 80], [60, 10]], [[100, 100], [130, 20]]
    held.apply(StrokeStart(seq=1, points=a))
    held.apply(StrokeStart(seq=2, points=b))
    held_image(held)
    held.apply(Undo(seq=3))
    assert np.array_equal(held_image(held), whole([a]))
    held.apply(Clear(seq=4))
    assert held.empty
    held.apply(Undo(seq=5))  # nothing to undo: nothing changes, the seq counts
    assert held.empty and held.seq == 5
    held.apply(StrokeStart(seq=6, points=b))
    assert np.array_equal(held_image(held), whole([b]))


def test_v1_renders_with_the_same_raster_all_points_at_once():
    strokes = random_digit(random.Random(3))
    raster = Raster()
    assert np.array_equal(render([parse_strokes(strokes)], [raster])[0], whole(strokes))


def drawn(held: HeldDrawing) -> list[list[list[float]]]:
    return held.as_lists()


def started() -> HeldDrawing:
    held = HeldDrawing()
    held.apply(StrokeStart(seq=1, points=[[0, 0], [10, 10]]))
    held.apply(AddPoints(seq=2, points=[[20, 5]]))
    return held


@pytest.mark.parametrize(
    "message",
    [
        AddPoints(seq=4, points=[[1, 1]]),  # a gap: 3 was lost
        AddPoints(seq=2, points=[[20, 5]]),  # a duplicate
        AddPoints(seq=1, points=[[1, 1]]),  # an old one
        Redraw(seq=2, strokes=[[[0, 0], [9, 9]]]),  # an old whole drawing
    ],
    ids=["gap", "duplicate", "old", "old drawing"],
)
def test_a_message_out_of_step_drops_the_drawing_and_asks_for_a_resync(message):
    held = started()
    assert held.apply(message) == RESYNC
    assert held.empty and not held.synced
    # Until the whole drawing comes again, increments (even the "right" next one) are refused.
    assert held.apply(AddPoints(seq=3, points=[[1, 1]])) == RESYNC
    assert held.empty
    assert held.apply(Redraw(seq=9, strokes=[[[0, 0], [10, 10], [20, 5], [30, 30]]])) is None
    assert held.synced and drawn(held) == [[[0, 0], [10, 10], [20, 5], [30, 30]]]
    assert held.apply(AddPoints(seq=10, points=[[40, 40]])) is None


def test_points_before_any_stroke_start_is_a_resync():
    held = HeldDrawing()
    assert held.apply(AddPoints(seq=1, points=[[1, 1]])) == RESYNC


def test_a_new_connection_starts_at_seq_1_and_may_start_with_a_whole_drawing():
    assert HeldDrawing().apply(StrokeStart(seq=2, points=[[1, 1]])) == RESYNC
    held = HeldDrawing()
    assert held.apply(Redraw(seq=5, strokes=SEVEN)) is None
    assert np.array_equal(held_image(held), whole(SEVEN))


def test_a_message_over_the_limits_changes_nothing():
    held = started()
    too_many = [[float(i), 0.0] for i in range(MAX_POINTS)]
    with pytest.raises(DrawingError) as caught:
        held.apply(AddPoints(seq=3, points=too_many))
    assert caught.value.code == "drawing_too_large"
    with pytest.raises(DrawingError) as caught:
        held.apply(AddPoints(seq=3, points=[[1e9, 0]]))
    assert caught.value.code == "bad_drawing"
    assert held.seq == 2 and drawn(held) == [[[0, 0], [10, 10], [20, 5]]]
    # The client counted the refused message: its next one is a gap.
    assert held.apply(AddPoints(seq=4, points=[[1, 1]])) == RESYNC


def test_strokes_are_limited_too():
    held = HeldDrawing()
    for seq in range(1, 65):
        assert held.apply(StrokeStart(seq=seq, points=[[seq, seq]])) is None
    with pytest.raises(DrawingError):
        held.apply(StrokeStart(seq=65, points=[[0, 0]]))
