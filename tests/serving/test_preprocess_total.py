"""The renderer is total: every drawing `parse_strokes` accepts becomes a finite 28×28 image,
whatever its coordinates (denormal, zero or vanishing extent, the edges of the range, extreme
aspect), alone or in a batch. And the model worker keeps one drawing's failure to itself."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_helpers import SEVEN

from server.serving import model_worker
from server.serving.inference import load_session
from server.serving.preprocess import MAX_COORD, DrawingError, parse_strokes, render

# Every float the validator lets through: denormals, ±0, the range's edges, and ordinary numbers.
coordinates = st.one_of(
    st.floats(-MAX_COORD, MAX_COORD, allow_nan=False, allow_infinity=False),
    st.floats(-1e-300, 1e-300, allow_subnormal=True),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.2e-308, MAX_COORD, -MAX_COORD, 1e-7]),
    st.integers(-int(MAX_COORD), int(MAX_COORD)),
)
point = st.tuples(coordinates, coordinates).map(list)
any_drawing = st.lists(st.lists(point, min_size=0, max_size=6), min_size=1, max_size=4)


def is_a_picture(image: np.ndarray) -> bool:
    return image.shape == (28, 28) and bool(np.isfinite(image).all()) and image.max() == 1.0


@settings(max_examples=300, deadline=None)
@given(strokes=any_drawing)
def test_every_accepted_drawing_renders_to_a_finite_image(strokes):
    try:
        checked = parse_strokes(strokes)
    except DrawingError:
        return  # refused with a code: fine
    assert is_a_picture(render([checked])[0])


@settings(max_examples=100, deadline=None)
@given(batch=st.lists(any_drawing, min_size=1, max_size=5))
def test_a_batch_of_any_accepted_drawings_renders(batch):
    checked = []
    for strokes in batch:
        with contextlib.suppress(DrawingError):
            checked.append(parse_strokes(strokes))
    if checked:
        assert all(is_a_picture(image) for image in render(checked))


@pytest.mark.parametrize(
    "strokes",
    [
        [[[0, 0], [5e-324, 0]]],  # a denormal wide: the poisoned-batch attack of issue 12
        [[[0, 0], [0, 5e-324]], [[1e-320, 1e-320]]],
        [[[MAX_COORD, MAX_COORD], [MAX_COORD, MAX_COORD - 1e-9]]],  # vanishing at the edge
        [[[-MAX_COORD, 0], [MAX_COORD, 1e-12]]],  # as flat as it gets
        [[[0, -MAX_COORD], [1e-12, MAX_COORD]]],  # as thin as it gets
    ],
)
def test_degenerate_coordinates_render(strokes):
    assert is_a_picture(render([parse_strokes(strokes)])[0])


def test_a_drawing_that_breaks_the_renderer_fails_only_itself(linear_onnx_model, monkeypatch):
    poison = [[[0, 0], [3, 3]]]
    real_render = model_worker.render

    def fragile_render(drawings, rasters=None):
        if any(d.points.tolist() == [[0, 0], [3, 3]] for d in drawings):
            raise ValueError("could not broadcast")
        return real_render(drawings, rasters)

    monkeypatch.setattr(model_worker, "render", fragile_render)
    session = load_session(linear_onnx_model(seed=1))
    items = [("strokes", SEVEN, False), ("strokes", poison, False), ("strokes", SEVEN, False)]

    first, poisoned, last = model_worker.infer(session, "v1", items)

    assert first[0] == last[0] == "answer" and first[1] == last[1]
    assert poisoned[:2] == ("refused", "bad_drawing")


def test_a_frame_that_breaks_the_parser_fails_only_itself(linear_onnx_model, monkeypatch):
    session = load_session(linear_onnx_model(seed=1))
    real_parse = model_worker.parse

    def fragile_parse(frame):
        if "boom" in frame:
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(frame)

    monkeypatch.setattr(model_worker, "parse", fragile_parse)
    good = '{"type":"predict","id":"a","drawing":{"strokes":[[[0,0],[5,9]]]}}'
    items = [("predict", good, False), ("predict", '{"boom": 1}', False)]

    answered, refused = model_worker.infer(session, "v1", items)

    assert answered[0] == "reply"
    assert refused[:2] == ("refused", "bad_drawing")
