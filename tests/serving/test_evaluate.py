"""`fool-the-model eval` and `predict`: answers on real MNIST, plain-word errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from data_dirs import add_model
from PIL import Image
from serving_helpers import digit_on_canvas, png_bytes

from server.serving.evaluate import accuracy, eval_command, predict_command
from server.serving.inference import load_session, run_batch
from server.serving.preprocess import png_to_image


def test_eval_prints_overall_and_per_class_accuracy(data_dir, linear_onnx_model, capsys):
    model = linear_onnx_model(seed=3)
    assert eval_command(model, data_dir) == 0
    out = capsys.readouterr().out
    assert "MNIST test accuracy: " in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in rows] == list(range(10))
    assert sum(int(row[2]) for row in rows) == 10_000


def test_accuracy_counts_right_answers(mnist_test_slice, linear_onnx_model):
    images, labels = mnist_test_slice
    session = load_session(linear_onnx_model(seed=3))
    guesses = run_batch(session, images).argmax(axis=1)
    overall, per_class = accuracy(session, images, labels)
    assert overall == pytest.approx(np.mean(guesses == labels))
    assert per_class[7][1] == int((labels == 7).sum())
    # Labels set to what the model answers make every answer right.
    assert accuracy(session, images, guesses)[0] == 1.0


def test_eval_without_the_model_file_says_so(data_dir, tmp_path, capsys):
    assert eval_command(tmp_path / "nope.onnx", data_dir) == 1
    assert "No model file" in capsys.readouterr().err


def test_predict_uses_the_newest_model_by_default(data_dir, tmp_path, linear_onnx_model, capsys):
    add_model(data_dir, "v1", linear_onnx_model(seed=1))
    add_model(data_dir, "v2", linear_onnx_model(seed=2))
    image_file = tmp_path / "seven.png"
    image_file.write_bytes(png_bytes(Image.fromarray(255 - digit_on_canvas())))

    assert predict_command(image_file, None, data_dir) == 0

    out = capsys.readouterr().out
    probs = run_batch(
        load_session(linear_onnx_model(seed=2)), png_to_image(image_file.read_bytes())[None]
    )
    assert f": {int(probs.argmax())}  (p=" in out and "model v2" in out


def test_predict_with_no_model_tells_how_to_make_one(data_dir, tmp_path, capsys):
    image_file = tmp_path / "seven.png"
    image_file.write_bytes(png_bytes(Image.fromarray(digit_on_canvas())))
    assert predict_command(image_file, None, data_dir) == 1
    assert "fool-the-model train" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No image file"),
        (b"not a png", "not a PNG"),
        (png_bytes(Image.new("L", (50, 50), 255)), "empty"),
    ],
)
def test_predict_explains_a_bad_image(
    data_dir, tmp_path, linear_onnx_model, capsys, content, message
):
    image_file = tmp_path / "drawing.png"
    if content is not None:
        image_file.write_bytes(content)
    assert predict_command(image_file, linear_onnx_model(seed=1), data_dir) == 1
    assert message in capsys.readouterr().err
