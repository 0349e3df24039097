"""Drawing → 28×28: what the model sees must not depend on where or how big a digit was drawn,
must look like MNIST, and every malformed input must end in a specific DrawingError."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from serving_helpers import SEVEN, digit_on_canvas, png_bytes, png_with_header

from server.serving import preprocess
from server.serving.preprocess import (
    DrawingError,
    image_to_png,
    parse_strokes,
    png_from_base64,
    png_to_image,
    render,
    strokes_to_image,
    to_mnist,
)


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero((image > 0).any(axis=1))
    cols = np.flatnonzero((image > 0).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = image.sum()
    return (
        float(image.sum(axis=1) @ np.arange(28) / total),
        float(image.sum(axis=0) @ np.arange(28) / total),
    )


# --- strokes ---------------------------------------------------------------------------------

points = st.lists(
    st.tuples(st.integers(0, 100), st.integers(0, 100)).map(list), min_size=1, max_size=12
)
drawings = st.lists(points, min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    strokes=drawings,
    scale=st.floats(0.25, 12.0),
    dx=st.floats(-2000, 2000),
    dy=st.floats(-2000, 2000),
)
def test_the_same_digit_anywhere_at_any_size_gives_the_same_image(strokes, scale, dx, dy):
    flat = np.concatenate([np.asarray(s, dtype=float) for s in strokes])
    assume(np.ptp(flat, axis=0).max() >= 4)  # a scribble of a few pixels is not a digit
    moved = [[[x * scale + dx, y * scale + dy] for x, y in stroke] for stroke in strokes]

    original = strokes_to_image(strokes)
    elsewhere = strokes_to_image(moved)

    assert np.abs(original - elsewhere).mean() < 0.01


def test_a_drawing_becomes_an_mnist_shaped_image():
    image = strokes_to_image(SEVEN)

    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0
    assert max(ink_box(image)) == 20  # fitted into the 20×20 box
    com_y, com_x = centre_of_mass(image)
    assert abs(com_y - 14) <= 0.5 and abs(com_x - 14) <= 0.5


def test_stroke_width_matches_mnist_ink(mnist_test_slice):
    # A vertical stroke is a "1": its ink should weigh about as much as MNIST's ones.
    images, labels = mnist_test_slice
    mnist_ink = images[labels == 1].sum(axis=(1, 2)).mean()
    drawn_ink = strokes_to_image([[[40, 10], [42, 90]]]).sum()
    assert 0.8 < drawn_ink / mnist_ink < 1.25


@pytest.mark.parametrize(
    "strokes",
    [
        [[[5, 5]]],  # a single dot
        [[[5, 5], [5, 5], [5, 5]]],  # the same point repeated
        [[[0, 50], [100, 50]]],  # a horizontal line: no height
        [[[50, 0], [50, 100]]],  # a vertical line: no width
        [[[1e5, -1e5]]],  # at the edge of the coordinate range
    ],
)
def test_degenerate_drawings_still_render(strokes):
    image = strokes_to_image(strokes)
    assert image.shape == (28, 28) and np.isfinite(image).all() and image.max() == 1.0


def test_sharp_corners_are_as_round_as_stroke_ends():
    # A wide pen drawn segment by segment leaves a notch outside a sharp corner unless it is
    # filled: a V drawn in one stroke must look like the same V drawn as two strokes.
    one_stroke = strokes_to_image([[[0, 0], [50, 100], [100, 0]]])
    two_strokes = strokes_to_image([[[0, 0], [50, 100]], [[50, 100], [100, 0]]])
    assert np.abs(one_stroke - two_strokes).max() < 0.05


@pytest.mark.parametrize(
    ("strokes", "code"),
    [
        ("1,2,3", "bad_drawing"),
        ({"strokes": []}, "bad_drawing"),
        (None, "bad_drawing"),
        ([[1, 2], [3, 4]], "bad_drawing"),  # a polyline missing one level of nesting
        ([[[[1, 2]]]], "bad_drawing"),  # one level too many
        ([[[1, 2, 3]]], "bad_drawing"),  # not a pair
        ([[[1, 2], [3]]], "bad_drawing"),  # ragged
        ([[["1", "2"]]], "bad_drawing"),
        ([[[None, 2]]], "bad_drawing"),
        ([[[True, False]]], "bad_drawing"),
        ([[[float("nan"), 2]]], "bad_drawing"),
        ([[[float("inf"), 2]]], "bad_drawing"),
        ([[[1e9, 2]]], "bad_drawing"),
        ([[[10**40, 2]]], "bad_drawing"),
        ([], "empty_drawing"),
        ([[], []], "empty_drawing"),
        ([[[i, i]] for i in range(65)], "drawing_too_large"),
        ([[[i, i] for i in range(2001)]], "drawing_too_large"),
        ([[[i, i] for i in range(1000)]] * 3, "drawing_too_large"),
    ],
)
def test_malformed_strokes_get_a_specific_error(strokes, code):
    with pytest.raises(DrawingError) as caught:
        strokes_to_image(strokes)
    assert caught.value.code == code
    assert caught.value.message  # a sentence for the player


def test_a_batch_draws_each_drawing_as_it_would_be_drawn_alone():
    # Serving draws many drawings in one `render` call: none may leak into another.
    drawings = [
        SEVEN,
        [[[5, 5]]],  # a dot
        [[[0, 50], [100, 50]]],  # a flat line
        [[[i, (i * 7) % 50] for i in range(31)] for _ in range(3)],
        [[[1e5, -1e5], [-1e5, 1e5]]],  # corner to corner of the coordinate range
    ]
    batch = render([parse_strokes(strokes) for strokes in drawings])
    alone = np.stack([strokes_to_image(strokes) for strokes in drawings])
    assert batch.shape == (5, 28, 28) and batch.dtype == np.float32
    assert np.array_equal(batch, alone)


def test_limits_themselves_are_allowed():
    strokes = [[[i, (i * 7) % 50] for i in range(31)] for _ in range(64)]
    assert sum(map(len, strokes)) <= preprocess.MAX_POINTS
    assert strokes_to_image(strokes).max() == 1.0


# --- to_mnist --------------------------------------------------------------------------------


def test_to_mnist_leaves_mnist_digits_as_they_are(mnist_test_slice):
    images, _ = mnist_test_slice
    differences = np.array([np.abs(to_mnist(image) - image).mean() for image in images])
    assert np.mean(differences < 0.01) > 0.95


def test_to_mnist_accepts_any_scale_of_ink():
    ink = digit_on_canvas()
    assert np.allclose(to_mnist(ink), to_mnist(ink.astype(np.float64) / 255.0), atol=1e-5)


@pytest.mark.parametrize(
    ("ink", "code"),
    [
        (np.zeros((28, 28)), "empty_drawing"),
        (np.zeros((0, 0)), "empty_drawing"),
        (np.full((28, 28), np.nan), "bad_drawing"),
        (np.ones((2, 28, 28)), "bad_drawing"),
    ],
)
def test_to_mnist_rejects_what_is_not_a_drawing(ink, code):
    with pytest.raises(DrawingError) as caught:
        to_mnist(ink)
    assert caught.value.code == code


# --- PNG -------------------------------------------------------------------------------------


def test_png_round_trip_keeps_an_mnist_image(mnist_test_slice):
    image = mnist_test_slice[0][0]
    assert np.abs(png_to_image(image_to_png(image)) - image).max() < 0.02


def polarities() -> dict[str, bytes]:
    """One white-on-black 7 exported in every colour mode and polarity a browser might send."""
    ink = digit_on_canvas()
    white_on_black = Image.fromarray(ink)
    black_on_white = Image.fromarray(255 - ink)
    alpha = Image.fromarray(ink)
    black_ink_transparent = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])
    white_ink_transparent = Image.merge("RGBA", [Image.new("L", alpha.size, 255)] * 3 + [alpha])
    return {
        "L white on black": png_bytes(white_on_black),
        "L black on white": png_bytes(black_on_white),
        "RGB black on white": png_bytes(black_on_white.convert("RGB")),
        "RGB white on black": png_bytes(white_on_black.convert("RGB")),
        "RGBA black ink, transparent": png_bytes(black_ink_transparent),
        "RGBA white ink, transparent": png_bytes(white_ink_transparent),
        "LA black on white": png_bytes(black_on_white.convert("LA")),
        "P black on white": png_bytes(black_on_white.convert("RGB").convert("P")),
        "1 black on white": png_bytes(black_on_white.convert("1")),
        "I;16 white on black": png_bytes(Image.fromarray(ink.astype(np.uint16) * 257)),
    }


@pytest.mark.parametrize("name", list(polarities()))
def test_png_polarity_and_colour_mode_are_detected(name):
    reference = to_mnist(digit_on_canvas())
    image = png_to_image(polarities()[name])
    assert np.abs(image - reference).mean() < 0.02


def test_drawing_a_digit_as_strokes_or_as_png_gives_nearly_the_same_image():
    side = 280
    corners = [[0.25 * side, 0.2 * side], [0.75 * side, 0.2 * side], [0.4 * side, 0.85 * side]]
    from_strokes = strokes_to_image([corners])
    from_png = png_to_image(png_bytes(Image.fromarray(digit_on_canvas(side))))
    assert np.abs(from_strokes - from_png).mean() < 0.05


def deflate(raw: bytes) -> bytes:
    return zlib.compress(raw, 9)


def decompression_bomb(side: int) -> bytes:
    """A genuine bomb: a few hundred KiB that inflate to side×side pixels of black."""
    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return png_with_header(side, side, data)


def test_a_decompression_bomb_is_refused_before_decoding():
    bomb = decompression_bomb(12_000)  # 144 megapixels, over Pillow's own limit too
    assert len(bomb) <= preprocess.MAX_PNG_BYTES
    with pytest.raises(DrawingError) as caught:
        png_to_image(bomb)
    assert caught.value.code == "drawing_too_large"


def test_pillows_bomb_guard_is_the_backstop(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # now a 28×28 PNG counts as a bomb
    with pytest.raises(DrawingError) as caught:
        png_to_image(image_to_png(strokes_to_image(SEVEN)))
    assert caught.value.code == "drawing_too_large"


def valid_png() -> bytes:
    return png_bytes(Image.fromarray(digit_on_canvas()))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "bad_drawing"),
        (b"hello, this is not an image", "bad_drawing"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "bad_drawing"),  # a JPEG
        ("not bytes", "bad_drawing"),
        (b"\x89PNG\r\n\x1a\n", "bad_drawing"),  # the signature and nothing else
        (valid_png()[:-200], "bad_drawing"),  # truncated in the pixel data
        (valid_png()[:30], "bad_drawing"),  # truncated inside the header chunk
        (png_with_header(10, 10, b"\x00" * 40), "bad_drawing"),  # IDAT that is not zlib
        (png_with_header(0, 10), "bad_drawing"),
        (png_with_header(100_000, 100_000), "drawing_too_large"),  # absurd dimensions
        (png_with_header(2**31 - 1, 1), "drawing_too_large"),
        (png_with_header(1025, 8, deflate(bytes(1026 * 8))), "drawing_too_large"),
        (b"\x89PNG\r\n\x1a\n" + bytes(300 * 1024), "drawing_too_large"),  # over 256 KiB
    ],
)
def test_bad_png_gets_a_specific_error(data, code):
    with pytest.raises(DrawingError) as caught:
        png_to_image(data)
    assert caught.value.code == code
    assert caught.value.message


def test_corrupt_pixel_data_is_a_bad_drawing():
    data = bytearray(valid_png())
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 60] = bytes(range(50))  # garbage in the compressed stream
    with pytest.raises(DrawingError) as caught:
        png_to_image(bytes(data))
    assert caught.value.code == "bad_drawing"


def test_base64_png_text_is_checked_before_decoding():
    png = valid_png()
    assert png_from_base64(base64.b64encode(png).decode()) == png
    for text, code in [
        ("%%%", "bad_drawing"),
        ("abc", "bad_drawing"),  # not a whole number of base64 quanta
        ("A" * (preprocess.MAX_PNG_BYTES * 4 // 3 + 8), "drawing_too_large"),
    ]:
        with pytest.raises(DrawingError) as caught:
            png_from_base64(text)
        assert caught.value.code == code


@pytest.mark.parametrize("colour", [0, 255])
def test_a_blank_png_is_an_empty_drawing(colour):
    with pytest.raises(DrawingError) as caught:
        png_to_image(png_bytes(Image.new("L", (280, 280), colour)))
    assert caught.value.code == "empty_drawing"


def test_the_largest_allowed_png_is_accepted():
    ink = np.zeros((1024, 1024), dtype=np.uint8)
    ink[200:800, 480:540] = 255  # a "1"
    assert png_to_image(png_bytes(Image.fromarray(ink))).max() == 1.0
