"""ONNX export with a parity gate.

The file honours the serving contract: input `image` float32 [N,1,28,28] in [0,1] (white ink on
black; normalisation is inside the graph), output `log_probs` float32 [N,10], dynamic N. It is one
self-contained file: torch's default (dynamo) exporter writes weights to a side `.onnx.data`
file unless told `external_data=False`.

The export goes to a temporary directory first; only a file that passes the contract check and
matches torch within `tolerance` on a batch is moved into place, so a failed export leaves
nothing behind.

`describe_onnx` then makes the file self-describing (server/serving/model_files.ONNX_METADATA):
metadata_props, a doc_string and model_version, checked with the full ONNX checker. Only the
metadata changes: the weights, and so the outputs, stay byte for byte what was checked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from server.atomic import atomic_write
from server.training.data import images_to_tensor

INPUT_NAME = "image"
OUTPUT_NAME = "log_probs"
OPSET = 18


class ExportError(RuntimeError):
    """The ONNX export failed or does not match torch; nothing was written."""


def export_onnx(
    model: nn.Module, path: Path, *, parity_images: np.ndarray, tolerance: float = 1e-4
) -> float:
    """Export `model` to `path` and return the max abs difference to torch on `parity_images`.

    `parity_images` is uint8 [N,28,28] (or float in [0,1]); N >= 2 so the batch axis is tested
    at two sizes. Raises ExportError when the export is unusable.
    """
    model = model.eval()
    batch = images_to_tensor(parity_images)
    if len(batch) < 2:
        raise ExportError("parity check needs at least 2 images")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        candidate = Path(tmp) / path.name
        _export(model, candidate, example=batch[:2])
        _check_single_file(Path(tmp), candidate)
        _check_contract(candidate)
        diff = max(_parity(model, candidate, batch), _parity(model, candidate, batch[:1]))
        if not diff <= tolerance:  # also catches NaN
            raise ExportError(
                f"ONNX output differs from torch by {diff:.3g} (max abs log-prob), more than the "
                f"allowed {tolerance:g}; the model was not written to {path}"
            )
        os.replace(candidate, path)
    return diff


def _export(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    try:
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            dynamic_shapes={"image": {0: torch.export.Dim("N", min=1, max=65536)}},
            verbose=False,
        )
    except Exception as exc:  # the exporter raises many kinds of errors
        raise ExportError(f"torch.onnx.export failed: {exc}") from exc


def _check_single_file(directory: Path, model_file: Path) -> None:
    extra = sorted(p.name for p in directory.iterdir() if p != model_file)
    if extra or not model_file.is_file():
        raise ExportError(f"export did not produce one self-contained file (also wrote {extra})")


def _check_contract(path: Path) -> None:
    model = onnx.load(str(path), load_external_data=False)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported model is not valid ONNX: {exc}") from exc
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ExportError("exported model refers to external weight data")
    signature = {
        "inputs": [_describe(v) for v in model.graph.input],
        "outputs": [_describe(v) for v in model.graph.output],
    }
    expected = {
        "inputs": [(INPUT_NAME, onnx.TensorProto.FLOAT, ["N", 1, 28, 28])],
        "outputs": [(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["N", 10])],
    }
    if signature != expected:
        raise ExportError(f"exported model has signature {signature}, expected {expected}")


def _describe(value: onnx.ValueInfoProto) -> tuple[str, int, list[str | int]]:
    tensor = value.type.tensor_type
    dims: list[str | int] = [
        "N" if d.dim_param else d.dim_value for d in tensor.shape.dim
    ]  # any symbolic name counts as the batch axis
    return value.name, tensor.elem_type, dims


def _parity(model: nn.Module, path: Path, batch: torch.Tensor) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    with torch.no_grad():
        torch_out = model(batch).numpy()
    if onnx_out.shape != torch_out.shape:
        raise ExportError(f"ONNX output shape {onnx_out.shape} != torch {torch_out.shape}")
    return float(np.max(np.abs(onnx_out - torch_out)))


def weights_sha256(path: Path) -> str:
    """sha256 of the weights alone: every initializer, in name order, as its name then its
    values as little-endian bytes. Unlike the file's sha256 it survives metadata edits, and
    anyone can recompute it with `onnx` and `numpy`."""
    model = onnx.load(str(path))
    digest = hashlib.sha256()
    for tensor in sorted(model.graph.initializer, key=lambda t: t.name):
        values = onnx.numpy_helper.to_array(tensor)
        digest.update(tensor.name.encode())
        digest.update(values.astype(values.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def describe_onnx(
    path: Path, metadata: Mapping[str, str], *, doc_string: str, model_version: int
) -> None:
    """Write `metadata` as the file's metadata_props (replacing any), with its doc_string and
    model_version, after the full ONNX check; the file is replaced atomically."""
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {key: str(value) for key, value in metadata.items()})
    model.doc_string = doc_string
    model.model_version = model_version
    model.producer_name = "fool-the-model"
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the described model is not valid ONNX: {exc}") from exc
    with atomic_write(path, binary=True, permissions=0o644) as f:
        f.write(model.SerializeToString())
