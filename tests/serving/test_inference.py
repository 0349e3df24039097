"""ONNX Runtime serving: batching must not change answers, the micro-batcher must coalesce, stay
bounded and survive cancellation, a hot swap under load must fail no request, drawings are drawn
in the worker exactly as preprocess draws them, and a dead worker is replaced."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from serving_helpers import SEVEN, digit_on_canvas, png_bytes

from server.realtime.protocol import ProtocolError
from server.serving.inference import (
    ModelError,
    Overloaded,
    Prediction,
    Predictor,
    PredictorClosed,
    load_session,
    run_batch,
)
from server.serving.preprocess import DrawingError, strokes_to_image


def random_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 28, 28), dtype=np.float32)


def test_run_batch_returns_probabilities(linear_onnx_model):
    probs = run_batch(load_session(linear_onnx_model(seed=1)), random_images(5))
    assert probs.shape == (5, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_batched_equals_unbatched(linear_onnx_model):
    session = load_session(linear_onnx_model(seed=1))
    images = random_images(33)
    batched = run_batch(session, images)
    one_by_one = np.concatenate([run_batch(session, image[None]) for image in images])
    assert np.abs(batched - one_by_one).max() <= 1e-6


def test_a_missing_or_broken_model_is_a_model_error(tmp_path, linear_onnx_model):
    with pytest.raises(ModelError, match="No model file"):
        load_session(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        load_session(garbage)


def test_a_model_that_breaks_the_contract_is_refused(tmp_path, linear_onnx_model):
    model = onnx.load(str(linear_onnx_model(seed=1)))
    model.graph.input[0].name = "pixels"
    model.graph.node[0].input[0] = "pixels"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, str(renamed))
    with pytest.raises(ModelError, match="model contract"):
        load_session(renamed)


async def test_predictor_answers_match_the_session(linear_onnx_model):
    path = linear_onnx_model(seed=1)
    images = random_images(40)
    expected = run_batch(load_session(path), images)
    async with Predictor(path, "v1") as predictor:
        answers = await asyncio.gather(*(predictor.predict(image) for image in images))
    for answer, probs in zip(answers, expected, strict=True):
        assert isinstance(answer, Prediction)
        assert answer.model_version == "v1"
        assert answer.label == int(probs.argmax())
        assert np.abs(np.array(answer.probs) - probs).max() <= 1e-6


async def test_concurrent_requests_are_coalesced(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1", max_batch=64) as predictor:
        await asyncio.gather(*(predictor.predict(image) for image in random_images(64)))
        assert 1 <= predictor.batches_run <= 4


async def test_batches_never_exceed_max_batch(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1", max_batch=8) as predictor:
        await asyncio.gather(*(predictor.predict(image) for image in random_images(64)))
        assert predictor.batches_run >= 64 // 8


async def test_a_full_queue_refuses_instead_of_growing(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1", max_queue=4) as predictor:
        results = await asyncio.gather(
            *(predictor.predict(image) for image in random_images(10)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, Overloaded)]
        answered = [r for r in results if isinstance(r, Prediction)]
        assert len(refused) == 6 and len(answered) == 4
        # Once the queue has drained, requests are served again.
        assert (await predictor.predict(random_images(1)[0])).model_version == "v1"


async def test_cancelled_callers_do_not_break_the_batcher(linear_onnx_model):
    path = linear_onnx_model(seed=1)
    images = random_images(200)
    expected = run_batch(load_session(path), images)
    rng = random.Random(0)
    async with Predictor(path, "v1", max_batch=16) as predictor:
        tasks = [asyncio.create_task(predictor.predict(image)) for image in images]
        cancelled = set()
        # Cancel a third of the callers at random moments: queued, batched, or running.
        for _ in range(20):
            await asyncio.sleep(0)
            for index in rng.sample(range(len(tasks)), 4):
                tasks[index].cancel()
                cancelled.add(index)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for index, result in enumerate(results):
            if isinstance(result, asyncio.CancelledError):
                assert index in cancelled
            else:
                assert isinstance(result, Prediction)
                assert np.abs(np.array(result.probs) - expected[index]).max() <= 1e-6
        assert sum(isinstance(r, Prediction) for r in results) >= len(images) - len(cancelled)
        # The batcher is still alive.
        assert (await predictor.predict(images[0])).label == int(expected[0].argmax())


async def test_hot_swap_under_load_fails_no_request(linear_onnx_model):
    old_path, new_path = linear_onnx_model(seed=1), linear_onnx_model(seed=2)
    images = random_images(50)
    expected = {
        "v1": run_batch(load_session(old_path), images),
        "v2": run_batch(load_session(new_path), images),
    }
    assert np.abs(expected["v1"] - expected["v2"]).max() > 0.1  # the models are distinguishable

    async with Predictor(old_path, "v1", max_batch=32) as predictor:
        seen: list[list[str]] = [[] for _ in range(40)]

        async def client(number: int) -> None:
            # Ask until the new model answers (the old one serves while the new one loads).
            for step in range(100_000):
                index = (number * 15 + step) % len(images)
                answer = await predictor.predict(images[index])
                probs = np.array(answer.probs)
                # The version that answered is the model that computed these probabilities.
                assert np.abs(probs - expected[answer.model_version][index]).max() <= 1e-6
                seen[number].append(answer.model_version)
                if answer.model_version == "v2":
                    return

        async def swap_midway() -> None:
            while sum(map(len, seen)) < 200:
                await asyncio.sleep(0.001)
            await predictor.swap(new_path, "v2")

        # Every request is answered: any failure would surface here.
        await asyncio.gather(swap_midway(), *(client(n) for n in range(40)))

        versions = [version for history in seen for version in history]
        assert len(versions) > 200 and {"v1", "v2"} <= set(versions)
        for history in seen:  # the switch is atomic: no client goes back to the old model
            assert history == sorted(history)
        assert predictor.version == "v2"
        assert (await predictor.predict(images[0])).model_version == "v2"


async def test_a_failed_swap_keeps_the_old_model_serving(tmp_path, linear_onnx_model):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    async with Predictor(linear_onnx_model(seed=1), "v1") as predictor:
        with pytest.raises(ModelError):
            await predictor.swap(broken, "v2")
        assert predictor.version == "v1"
        assert (await predictor.predict(random_images(1)[0])).model_version == "v1"


async def test_close_answers_waiting_callers_and_refuses_new_ones(linear_onnx_model):
    predictor = Predictor(linear_onnx_model(seed=1), "v1", max_batch=1, max_queue=100)
    await predictor.start()
    tasks = [asyncio.create_task(predictor.predict(image)) for image in random_images(50)]
    await asyncio.sleep(0)
    await predictor.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, Prediction | PredictorClosed) for r in results)
    assert any(isinstance(r, PredictorClosed) for r in results)
    with pytest.raises(PredictorClosed):
        await predictor.predict(random_images(1)[0])


async def test_predict_rejects_a_wrongly_shaped_image(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1") as predictor:
        with pytest.raises(ValueError, match="28×28"):
            await predictor.predict(np.zeros((28, 27), dtype=np.float32))


async def test_a_failing_batch_fails_its_callers_but_not_the_batcher(linear_onnx_model):
    unreadable = np.full((28, 28), "ink", dtype=object)  # the right shape, but not numbers
    async with Predictor(linear_onnx_model(seed=1), "v1") as predictor:
        with pytest.raises(ValueError):
            await predictor.predict(unreadable)
        assert (await predictor.predict(random_images(1)[0])).model_version == "v1"


# --- drawings, drawn in the worker's batches ---------------------------------------------------


async def test_strokes_are_drawn_as_preprocess_draws_them(linear_onnx_model):
    path = linear_onnx_model(seed=1)
    expected_image = strokes_to_image(SEVEN)
    async with Predictor(path, "v1") as predictor:
        answer = await predictor.predict_strokes(SEVEN, want_image=True)
        live = await predictor.predict_strokes(SEVEN)
    assert answer.image is not None and np.array_equal(answer.image, expected_image)
    expected = run_batch(load_session(path), expected_image[None])[0]
    assert np.abs(np.array(answer.probs) - expected).max() <= 1e-6
    assert live.image is None and live.probs == answer.probs  # no image unless asked for


async def test_a_drawing_that_cannot_be_drawn_fails_alone(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1", max_wait_ms=20) as predictor:
        results = await asyncio.gather(
            predictor.predict_strokes(SEVEN),
            predictor.predict_strokes([]),
            predictor.predict_strokes([[[1, 2, 3]]]),
            predictor.predict_png(b"not a png"),
            predictor.predict_png(png_bytes(Image.fromarray(digit_on_canvas()))),
            return_exceptions=True,
        )
        assert predictor.batches_run == 1  # all in one batch
    drawn, empty, bad_point, bad_png, png = results
    assert isinstance(drawn, Prediction) and isinstance(png, Prediction)
    assert isinstance(empty, DrawingError) and empty.code == "empty_drawing"
    assert isinstance(bad_point, DrawingError) and bad_point.code == "bad_drawing"
    assert isinstance(bad_png, DrawingError) and bad_png.code == "bad_drawing"


async def test_a_predict_frame_is_answered_whole_by_the_worker(linear_onnx_model):
    path = linear_onnx_model(seed=1)
    frame = json.dumps({"type": "predict", "id": "p7", "drawing": {"strokes": SEVEN}})
    async with Predictor(path, "v1") as predictor:
        reply = json.loads(await predictor.answer_frame(frame))
        expected = await predictor.predict_strokes(SEVEN)
        with pytest.raises(ProtocolError) as refused:
            await predictor.answer_frame('{"type": "predict", "id": "p8", "drawing": {}}')
        with pytest.raises(ProtocolError) as empty:
            await predictor.answer_frame(
                '{"type": "predict", "id": "p9", "drawing": {"strokes": []}}'
            )
        with pytest.raises(ProtocolError) as not_a_guess:
            await predictor.answer_frame('{"type": "ping", "id": "h1"}')
    assert reply["type"] == "prediction" and reply["id"] == "p7"
    assert reply["probs"] == [round(p, 5) for p in expected.probs]
    assert reply["label"] == expected.label and reply["model_version"] == "v1"
    assert (refused.value.code, refused.value.id) == ("bad_message", "p8")
    assert (empty.value.code, empty.value.id) == ("empty_drawing", "p9")
    assert (not_a_guess.value.code, not_a_guess.value.id) == ("bad_message", "h1")


async def test_a_held_drawing_is_submitted_as_if_sent_whole(linear_onnx_model):
    """A v2 submission of the held drawing: its strokes as stored, and the same guess and image
    as the whole drawing would get; nothing for a drawing out of step; no guess for an empty
    one."""
    key = 7
    first, second = SEVEN[0], SEVEN[1]
    messages = [
        {"type": "stroke_start", "seq": 1, "points": first[:2]},
        {"type": "points", "seq": 2, "points": first[2:], "guess": True, "id": "g"},
        {"type": "stroke_start", "seq": 3, "points": second},
    ]
    async with Predictor(linear_onnx_model(seed=1), "v1") as predictor:
        await predictor.answer_increments(key, [json.dumps(m) for m in messages])
        held = await predictor.held_submission(key, 3)
        whole = await predictor.predict_strokes([first, second], want_image=True)
        out_of_step = await predictor.held_submission(key, 2)
        await predictor.answer_increments(key, [json.dumps({"type": "clear", "seq": 4})])
        empty = await predictor.held_submission(key, 4)
    assert held is not None and held.prediction is not None
    assert json.loads(held.strokes_json) == [first, second]
    assert held.prediction.image is not None and whole.image is not None
    assert np.array_equal(held.prediction.image, whole.image)
    assert held.prediction.probs == whole.probs and held.prediction.label == whole.label
    assert out_of_step is None
    assert empty is not None and empty.prediction is None and json.loads(empty.strokes_json) == []


async def test_a_guess_superseded_by_a_clear_is_not_answered(linear_onnx_model):
    """Messages that arrived together are guessed once: a guess asked for before a `clear` in
    the same group is superseded (no reply), while a guess asked of an empty drawing is
    `empty_drawing`."""
    stroke = json.dumps({"type": "stroke_start", "seq": 1, "points": SEVEN[0]})
    asked = json.dumps({"type": "points", "seq": 2, "points": [[5, 5]], "guess": True, "id": "a"})
    clear = json.dumps({"type": "clear", "seq": 3})
    empty = json.dumps({"type": "undo", "seq": 4, "guess": True, "id": "e"})
    async with Predictor(linear_onnx_model(seed=1), "v1") as predictor:
        superseded = await predictor.answer_increments(1, [stroke, asked, clear])
        refused = await predictor.answer_increments(1, [empty])
    assert superseded == []
    assert [(r["type"], r["code"], r["id"]) for r in map(json.loads, refused)] == [
        ("error", "empty_drawing", "e")
    ]


async def test_a_dead_worker_fails_its_batch_and_a_new_one_takes_over(linear_onnx_model):
    async with Predictor(linear_onnx_model(seed=1), "v1") as predictor:
        first = predictor.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        answers = []
        for _ in range(2):  # the batch sent to the dead worker may fail; the next one is served
            try:
                answers.append(await predictor.predict_strokes(SEVEN))
            except ModelError as error:
                assert "worker stopped" in str(error)
        assert answers and answers[-1].model_version == "v1"
        assert predictor.worker_pid not in (None, first)


async def test_close_stops_the_worker(linear_onnx_model):
    predictor = Predictor(linear_onnx_model(seed=1), "v1")
    await predictor.start()
    pid = predictor.worker_pid
    await predictor.close()
    assert pid is not None and not Path(f"/proc/{pid}").exists()
