"""ONNX export: one self-contained file honouring the serving contract, or a loud failure."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from server.mnist import Mnist
from server.serving.model_files import weights_path_for
from server.training import export as export_module
from server.training.export import ExportError, export_onnx
from server.training.model import Classifier


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_exported_file_honours_the_contract(trained_model: Path, mnist: Mnist) -> None:
    # trained_model went through export_onnx inside the real pipeline
    assert sorted(p.name for p in trained_model.parent.iterdir()) == ["v1.json", "v1.onnx", "v1.pt"]
    model = onnx.load(str(trained_model))
    onnx.checker.check_model(model)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    (image,) = model.graph.input
    (log_probs,) = model.graph.output
    assert image.name == "image" and image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(image) == ["N", 1, 28, 28]
    assert log_probs.name == "log_probs" and _dims(log_probs) == ["N", 10]


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_exported_model_matches_torch_at_any_batch_size(
    trained_model: Path, mnist: Mnist, batch: int
) -> None:
    torch_model = Classifier().eval()
    torch_model.load_state_dict(torch.load(weights_path_for(trained_model), weights_only=True))
    images = (mnist.test_images[-batch:, None] / np.float32(255)).astype(np.float32)
    session = ort.InferenceSession(str(trained_model), providers=["CPUExecutionProvider"])

    (onnx_out,) = session.run(["log_probs"], {"image": images})
    with torch.no_grad():
        torch_out = torch_model(torch.from_numpy(images)).numpy()

    assert onnx_out.shape == (batch, 10) and onnx_out.dtype == np.float32
    assert np.abs(onnx_out - torch_out).max() <= 1e-4
    np.testing.assert_allclose(np.exp(onnx_out).sum(axis=1), 1.0, rtol=1e-5)  # log-probabilities


def test_export_fails_loudly_when_onnx_disagrees_with_torch(
    tmp_path: Path, mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = torch.onnx.export

    def export_a_different_model(model: torch.nn.Module, *args: object, **kwargs: object) -> None:
        twin = copy.deepcopy(model)
        with torch.no_grad():
            twin.net.fc2.bias[3] += 0.05  # type: ignore[index, operator, union-attr]
        real_export(twin, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.onnx, "export", export_a_different_model)
    torch.manual_seed(0)
    target = tmp_path / "models" / "v1.onnx"

    with pytest.raises(ExportError, match=r"differs from torch by .* more than the allowed 0.0001"):
        export_onnx(Classifier(), target, parity_images=mnist.test_images[:16])
    assert list(target.parent.iterdir()) == []  # nothing written, no temporary left


def test_export_failure_is_an_export_error(tmp_path: Path, mnist: Mnist, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match=r"torch\.onnx\.export failed: unsupported operator"):
        export_onnx(Classifier(), tmp_path / "m.onnx", parity_images=mnist.test_images[:4])
    assert list(tmp_path.iterdir()) == []


def test_side_data_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "m.onnx.data").write_bytes(b"")
    with pytest.raises(ExportError, match=r"one self-contained file .*m.onnx.data"):
        export_module._check_single_file(tmp_path, tmp_path / "m.onnx")


def test_wrong_signature_is_refused(tmp_path: Path, linear_onnx_model) -> None:
    path = linear_onnx_model()
    model = onnx.load(str(path))
    model.graph.output[0].name = "scores"
    model.graph.node[-1].output[0] = "scores"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match="signature"):
        export_module._check_contract(path)


def test_parity_needs_a_batch(tmp_path: Path, mnist: Mnist) -> None:
    with pytest.raises(ExportError, match="at least 2 images"):
        export_onnx(Classifier(), tmp_path / "m.onnx", parity_images=mnist.test_images[:1])
