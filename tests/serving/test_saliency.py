"""Where the model looked: occlusion sensitivity highlights the region the guess depends on, costs
one session run per map, and runs in the model worker beside (never inside) batches of guesses."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serving_helpers import SEVEN

from server.serving.inference import Explanation, Predictor, load_session, run_batch
from server.serving.model_worker import explain_drawing
from server.serving.preprocess import DrawingError, strokes_to_image
from server.serving.saliency import CORNERS, COVERED, PATCH, explain, inked, to_bytes


def two_blobs() -> np.ndarray:
    """Ink in the top-left corner and in the bottom-right corner."""
    image = np.zeros((28, 28), dtype=np.float32)
    image[2:10, 2:10] = 1.0
    image[18:26, 18:26] = 1.0
    return image


class TopLeftModel:
    """Reads a 3 when the top-left corner has ink, else a 0; ignores everything else. Counts
    how often it is run."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.runs += 1
        ink = images[:, 2:10, 2:10].mean(axis=(1, 2))
        probs = np.full((len(images), 10), 0.01, dtype=np.float32)
        probs[:, 3] = 0.1 + 0.8 * ink
        probs[:, 0] = 0.9 - 0.8 * ink
        return probs / probs.sum(axis=1, keepdims=True)


def test_the_heat_map_lights_up_the_region_the_guess_depends_on():
    model = TopLeftModel()
    seen = explain(two_blobs(), model)
    assert seen.label == 3
    assert seen.heatmap.shape == (28, 28)
    assert seen.heatmap.min() >= 0.0 and seen.heatmap.max() == pytest.approx(1.0)
    assert seen.heatmap[2:10, 2:10].mean() > 0.5
    # The other blob is ink too, but covering it changes nothing: no heat there.
    assert seen.heatmap[18:26, 18:26].max() == 0.0


def test_a_map_is_one_run_of_the_model_on_one_batch():
    model = TopLeftModel()
    explain(two_blobs(), model)
    assert model.runs == 1


def test_skipping_patches_over_no_ink_changes_nothing(linear_onnx_model):
    session = load_session(linear_onnx_model(seed=2))
    image = strokes_to_image(SEVEN)
    seen = explain(image, lambda batch: run_batch(session, batch))
    # Every patch occluded, the slow way: one run per patch.
    base = run_batch(session, image[None])[0]
    total = np.zeros((28, 28))
    for row, col in CORNERS:
        copy = image.copy()
        copy[row : row + PATCH, col : col + PATCH] = 0.0
        drop = base[seen.label] - run_batch(session, copy[None])[0][seen.label]
        total[row : row + PATCH, col : col + PATCH] += max(drop, 0.0)
    expected = total / COVERED
    assert np.allclose(seen.heatmap, expected / expected.max(), atol=1e-4)


def test_a_blank_region_is_cold_and_a_blank_image_has_no_heat_at_all():
    seen = explain(np.zeros((28, 28), dtype=np.float32), TopLeftModel())
    assert not seen.heatmap.any()


def test_planes_travel_as_784_bytes_row_by_row():
    plane = np.zeros((28, 28), dtype=np.float32)
    plane[0, 1] = 1.0
    plane[27, 27] = 0.5
    data = to_bytes(plane)
    assert len(data) == 784
    assert data[1] == 255 and data[-1] == 128 and data[0] == 0


class CountingSession:
    """An ONNX session that counts its runs (and the size of each batch)."""

    def __init__(self, session) -> None:
        self.session = session
        self.batches: list[int] = []

    def run(self, outputs, feeds):
        self.batches.append(len(feeds["image"]))
        return self.session.run(outputs, feeds)


def test_the_worker_explains_a_drawing_with_one_session_run(linear_onnx_model):
    session = CountingSession(load_session(linear_onnx_model(seed=1)))
    outcome = explain_drawing(session, "strokes", SEVEN)  # type: ignore[arg-type]
    assert session.batches == [1 + len(inked(strokes_to_image(SEVEN)))] != [1 + len(CORNERS)]
    kind, probs, label, image, heatmap = outcome
    assert kind == "explained"
    assert np.array_equal(image, strokes_to_image(SEVEN))
    plain = run_batch(session.session, image[None])[0]
    assert label == int(plain.argmax())
    assert np.allclose(probs, plain, atol=1e-5)
    assert heatmap.shape == (28, 28) and heatmap.min() >= 0.0 and heatmap.max() <= 1.0


def test_an_undrawable_drawing_is_refused_alone(linear_onnx_model):
    session = load_session(linear_onnx_model(seed=1))
    assert explain_drawing(session, "strokes", [[["x", 1]]])[:2] == ("refused", "bad_drawing")
    assert explain_drawing(session, "png", b"not a png")[0] == "refused"


async def test_explanations_and_guesses_share_the_worker_without_mixing(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1", max_wait_ms=1) as predictor:
        image = strokes_to_image(SEVEN)
        guesses = [predictor.predict(image) for _ in range(20)]
        results = await asyncio.gather(predictor.explain("strokes", SEVEN), *guesses)
        seen, answers = results[0], results[1:]
        assert isinstance(seen, Explanation)
        assert seen.model_version == "v1"
        assert {answer.label for answer in answers} == {seen.label}
        assert np.array_equal(seen.image, image)

        with pytest.raises(DrawingError) as refused:
            await predictor.explain("strokes", [])
        assert refused.value.code in {"empty_drawing", "bad_drawing"}
        # A refused explanation leaves the worker serving guesses.
        assert (await predictor.predict(image)).label == seen.label
