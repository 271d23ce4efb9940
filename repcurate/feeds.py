"""One curated set, every toolchain's calibration input: numpy batches, a torch Dataset/DataLoader, an ONNX
Runtime ``CalibrationDataReader``, an OpenVINO NNCF ``nncf.Dataset`` and the generator TFLite's converter wants.

Each adapter takes the set's stacked sample tensors (row i ↔ ``manifest["samples"][i]``) and imports its
toolchain lazily, naming the extra to install when it is missing. :class:`~repcurate.repset.RepresentativeSet`
exposes them as methods (``numpy()``, ``torch_dataset()``, ``torch_loader()``, ``ort_reader()``,
``nncf_dataset()``, ``tflite_representative_dataset()``) beside ``mct_data_gen()``. Every adapter yields the same samples in the
same order on every pass, so calibration is deterministic.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from repcurate.errors import MissingDependencyError, UsageError


def _batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


def numpy_batches(tensors: np.ndarray, batch_size: int = 32) -> list[np.ndarray]:
    """The samples as float32 batches of ``batch_size`` (the last may be smaller), in set order."""
    size = _batch_size(batch_size)
    data = np.asarray(tensors, dtype=np.float32)
    return [np.ascontiguousarray(data[start:start + size]) for start in range(0, len(data), size)]


def torch_dataset(tensors: np.ndarray) -> Any:
    """A ``torch.utils.data.TensorDataset`` of the samples (float32), in set order."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", purpose="torch_dataset()") from None
    return torch.utils.data.TensorDataset(torch.from_numpy(np.ascontiguousarray(tensors, dtype=np.float32)))


def torch_loader(tensors: np.ndarray, batch_size: int = 32) -> Any:
    """A ``torch.utils.data.DataLoader`` over :func:`torch_dataset` (not shuffled: calibration is deterministic);
    each batch is a one-element list ``[x]``, as ``TensorDataset`` yields."""
    import torch

    return torch.utils.data.DataLoader(torch_dataset(tensors), batch_size=_batch_size(batch_size), shuffle=False)


def ort_reader(tensors: np.ndarray, input_name: str, batch_size: int = 1) -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` for ``onnxruntime.quantization.quantize_static``: feeds
    ``{input_name: batch}``; ``batch_size`` 1 suits models exported with a fixed batch dimension."""
    try:
        from onnxruntime.quantization import CalibrationDataReader
    except ImportError:
        raise MissingDependencyError("onnxruntime", extra="export", purpose="ort_reader()") from None
    if not isinstance(input_name, str) or not input_name:
        raise UsageError("ort_reader needs the ONNX model's input name, e.g. session.get_inputs()[0].name")
    batches = numpy_batches(tensors, batch_size)

    class RepsetCalibrationReader(CalibrationDataReader):
        """The curated set, one ``{input_name: batch}`` per ``get_next()``; ``rewind()`` starts over."""

        def __init__(self) -> None:
            self.position = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.position >= len(batches):
                return None
            self.position += 1
            return {input_name: batches[self.position - 1]}

        def rewind(self) -> None:
            self.position = 0

        def __len__(self) -> int:
            return len(batches)

    return RepsetCalibrationReader()


#: NNCF's own switch that replaces its telemetry with a stub (read once, when ``nncf`` is first imported; see
#: ``nncf/telemetry/wrapper.py``): repcurate sets it so that calibrating with a set never sends usage events.
NNCF_TELEMETRY_OFF = ("NNCF_CI", "1")


def _import_nncf_quietly() -> Any:
    """``import nncf`` with its telemetry off, unless the user set NNCF's switches themselves."""
    if "nncf" not in sys.modules and not (os.environ.get("NNCF_CI") or os.environ.get("NNCF_DEV")):
        os.environ[NNCF_TELEMETRY_OFF[0]] = NNCF_TELEMETRY_OFF[1]
    import nncf

    return nncf


def nncf_dataset(tensors: np.ndarray, transform: Callable[[np.ndarray], Any] | None = None) -> Any:
    """An OpenVINO NNCF ``nncf.Dataset`` for ``nncf.quantize``: one float32 sample per item, shaped ``(1, ...)``
    (a batch of one, as NNCF calibrates), in set order; ``transform`` maps an item to the model's input (e.g.
    ``lambda x: {"pixels": x}``; NNCF's ``transform_func``). NNCF's telemetry is switched off (``NNCF_CI=1``)
    before NNCF is first imported, unless ``NNCF_CI`` or ``NNCF_DEV`` is already set."""
    try:
        nncf = _import_nncf_quietly()
    except ImportError:
        raise MissingDependencyError("nncf", extra="nncf", purpose="nncf_dataset()") from None
    if transform is not None and not callable(transform):
        raise UsageError(f"transform must be a function of one sample batch, got {transform!r}")
    data = np.asarray(tensors, dtype=np.float32)
    items = [np.ascontiguousarray(data[i:i + 1]) for i in range(len(data))]
    return nncf.Dataset(items, transform)


def tflite_representative_dataset(tensors: np.ndarray, *, from_channels_first: bool = False) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The zero-argument generator function ``tf.lite.TFLiteConverter.representative_dataset`` takes: one sample
    per step as ``[x[None]]`` (float32). TFLite models are channels-last; a set built for a channels-first (PyTorch)
    pipeline is transposed with ``from_channels_first=True`` (C, H, W → H, W, C)."""
    data = np.asarray(tensors, dtype=np.float32)
    if from_channels_first:
        if data.ndim != 4:
            raise UsageError(f"from_channels_first needs samples of shape (C, H, W), got {data.shape[1:]}")
        data = np.ascontiguousarray(data.transpose(0, 2, 3, 1))

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for sample in data:
            yield [sample[None]]

    return representative_dataset
