"""The graph inputs of an ONNX model (names, dims, element type), read with the ``onnx`` package lazily."""
from __future__ import annotations

from pathlib import Path

from repcurate.errors import InputError, MissingDependencyError
from repcurate.export.base import ModelInput


def onnx_inputs(path: Path) -> tuple[ModelInput, ...]:
    """The inputs of the ONNX model at ``path`` that are fed at run time (initializers listed as inputs by old
    exporters are left out); :class:`InputError` when the file is missing or is not an ONNX model."""
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", extra="export", purpose="--onnx-model") from None
    if not Path(path).is_file():
        raise InputError(f"{path}: not found; fix: pass the ONNX model the set will calibrate")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: any unreadable file
        raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__}); fix: pass a .onnx file") from None
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
        elem_type = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name if tensor_type.elem_type else "unknown"
        inputs.append(ModelInput(name=value.name, dims=dims, elem_type=elem_type))
    if not inputs:
        raise InputError(f"{path}: the ONNX graph has no inputs; fix: pass the model the set will calibrate")
    return tuple(inputs)
