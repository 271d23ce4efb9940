"""Small real sets (scikit-learn's digits as (C, H, W) images, saved and verified like any set) and tiny real ONNX
models, for the exporter tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repcurate.repset import SCHEMA_VERSION, RepresentativeSet


def save_digit_set(directory: Path, n: int = 7, *, framework: str | None = "torch", channels_last: bool = False) -> np.ndarray:
    """``n`` digits as float32 images (3, 8, 6): (C, H, W), or (H, W, C) with ``channels_last``; returns the tensors."""
    data = load_digits()
    images = (data.images[:n, :, :6] / 16.0).astype(np.float32)  # H != W, so a wrong transpose cannot pass
    tensors = np.stack([images, images * 0.5, 1 - images], axis=-1 if channels_last else 1)
    manifest = {"schema_version": SCHEMA_VERSION, "root": str(directory.parent / "train"), "layout": "classes",
                "samples": [{"path": f"{int(d)}/{i:04d}.png", "label": str(int(d)), "content_fingerprint": f"{i:032x}"}
                            for i, d in enumerate(data.target[:n])]}
    if framework is not None:
        manifest["model"] = {"spec": "example", "framework": framework}
    RepresentativeSet(tensors=np.ascontiguousarray(tensors), manifest=manifest).save(directory)
    return tensors


def write_onnx(path: Path, inputs: dict[str, list[int | str]], elem_type: str = "float32") -> Path:
    """A real ONNX model: the sum of ``inputs`` (name → dims, a str dim is symbolic) through ``Relu``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    kind = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8}[elem_type]
    values = [helper.make_tensor_value_info(name, kind, dims) for name, dims in inputs.items()]
    names = list(inputs)
    nodes = [helper.make_node("Relu", [names[0]], ["y"])] if len(names) == 1 else [
        helper.make_node("Add", names[:2], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    output = helper.make_tensor_value_info("y", kind, None)
    model = helper.make_model(helper.make_graph(nodes, "g", values, [output]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def digit_set(tmp_path: Path) -> tuple[Path, np.ndarray]:
    directory = tmp_path / "repset"
    return directory, save_digit_set(directory)
