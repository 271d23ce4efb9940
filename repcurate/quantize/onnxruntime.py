"""The ONNX Runtime quantizer: static QDQ quantization of a PyTorch model's ONNX export, run by ORT.

The float model is exported with ``torch.onnx.export`` (TorchScript exporter, opset :data:`OPSET`, a dynamic
batch axis), quantized by ``onnxruntime.quantization.quantize_static`` in the QDQ format (per-channel
symmetric weights, int8 activations) calibrated by the arm's set through a ``CalibrationDataReader``, and the
quantized graph is run by an ORT ``InferenceSession`` wrapped as a ``torch.nn.Module`` (:class:`OrtModule`) so
the torch framework scores it like any other model. The settings grid is ORT's calibration method (MinMax,
Entropy, Percentile) instead of MCT's bias correction.

Weights: 8 bits (``QInt8``) or 4 bits (``QInt4``). onnxruntime 1.20's ``quantize_static`` writes 4-bit weights
as INT4 initializers behind ``DequantizeLinear``; below opset 21 (ours is 17) those Q/DQ nodes go to the
``com.microsoft`` domain, which ORT's CPU provider runs. (``MatMulNBits``, ORT's other 4-bit path, is
weight-only for MatMul in ``matmul_4bits_quantizer`` and does not cover convolutions, so it is not used.)
Keras models have no ONNX export here (tf2onnx is not a dependency): the quantizer refuses them (exit 2).
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import MissingDependencyError, UsageError
from repcurate.frameworks.base import Framework
from repcurate.quantize.base import DataGen, GridAxis, settings_grid

log = logging.getLogger("repcurate")

WEIGHT_BITS = (8, 4)
#: Calibration method names (lower case, as the CLI takes them) → ``CalibrationMethod`` member names.
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
#: The ONNX opset of the float export (the TorchScript exporter's well-trodden range).
OPSET = 17


def _import_ort() -> Any:
    try:
        import onnxruntime
        import onnxruntime.quantization
    except ImportError:
        raise MissingDependencyError("onnxruntime", extra="export", purpose="--quantizer onnxruntime") from None
    return onnxruntime


@dataclass(frozen=True)
class ORTSettings:
    """One ONNX Runtime static-quantization configuration: calibration method and weight bits (QDQ format,
    per-channel symmetric weights, int8 activations)."""

    weights_bits: int = 8
    calibration: str = "minmax"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return f"{CALIBRATION_METHODS[self.calibration]} calibration, {self.weights_bits}-bit weights, int8 activations (QDQ)"


@contextlib.contextmanager
def _quiet_ort() -> Iterator[None]:
    """Keep ORT's calibrator prints off stdout (a ``--format json`` report goes there) and its root-logger
    warnings ("consider pre-processing", "4-bit Q/DQ in the com.microsoft domain") off stderr: both are logged
    at debug level on repcurate's logger instead."""
    root = logging.getLogger()

    def divert(record: logging.LogRecord) -> bool:
        if "onnxruntime" in record.pathname:
            log.debug("onnxruntime: %s", record.getMessage())
            return False
        return True

    printed = io.StringIO()
    root.addFilter(divert)
    try:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.onnx's deprecation notes about the TorchScript exporter
            yield
    finally:
        root.removeFilter(divert)
        if printed.getvalue().strip():
            log.debug("onnxruntime: %s", printed.getvalue().strip())


def _flat_outputs_module(model: Any) -> Any:
    """``model`` returning a tuple of tensors in the framework's output order (tuple/list/dict flattened), so
    the ONNX graph's outputs line up with :meth:`Framework.outputs` of the float model."""
    import torch

    from repcurate.frameworks.torch import flatten_outputs

    class FlatOutputs(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> tuple[Any, ...]:
            return tuple(flatten_outputs(self.inner(*inputs)))

    return FlatOutputs(model).eval()


def _make_module(session: Any, onnx_bytes: bytes) -> Any:
    """An ``nn.Module`` whose forward runs ``session`` (numpy in, torch tensors out)."""
    import torch

    class OrtModule(torch.nn.Module):
        """A quantized ONNX model run by ONNX Runtime, callable like the float torch model."""

        def __init__(self) -> None:
            super().__init__()
            self.session = session
            self.onnx_bytes = onnx_bytes
            self.input_names = [i.name for i in session.get_inputs()]

        def forward(self, *inputs: Any) -> Any:
            feed = {name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
                    for name, t in zip(self.input_names, inputs)}
            outputs = [torch.from_numpy(np.asarray(o)) for o in self.session.run(None, feed)]
            return outputs[0] if len(outputs) == 1 else tuple(outputs)

    return OrtModule()


def calibration_reader(data_gen: DataGen, input_names: list[str]) -> Any:
    """An ORT ``CalibrationDataReader`` over one pass of ``data_gen`` (one ``{name: batch}`` per batch)."""
    from onnxruntime.quantization import CalibrationDataReader

    class DataGenReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = data_gen()

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            return {name: np.ascontiguousarray(b, dtype=np.float32) for name, b in zip(input_names, batch)}

        def rewind(self) -> None:
            self.batches = data_gen()

    return DataGenReader()


class ORTQuantizer:
    """ONNX Runtime ``quantize_static`` (QDQ) of PyTorch models, scored by an ORT ``InferenceSession``."""

    name = "onnxruntime"
    axes = (GridAxis("calibration", {method: method for method in CALIBRATION_METHODS},
                     "ONNX Runtime's grid: minmax, entropy, percentile (default: all three)", metavar="METHODS"),)
    weight_bits = WEIGHT_BITS
    base_fields = ("weights_bits",)

    def settings(self, **fields: Any) -> ORTSettings:
        settings = ORTSettings(**fields)
        if settings.weights_bits not in WEIGHT_BITS or isinstance(settings.weights_bits, bool):
            raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS} for the onnxruntime quantizer")
        if settings.calibration not in CALIBRATION_METHODS:
            raise UsageError(f"calibration: {settings.calibration!r} is not one of {', '.join(CALIBRATION_METHODS)}")
        return settings

    def grid(self, base: ORTSettings, axes: Mapping[str, Sequence[Any]] | None = None) -> list[ORTSettings]:
        return settings_grid(self, base, axes)

    def prepare(self, framework: Framework, model: Any) -> tuple[Any, list[str]]:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise UsageError(f"the onnxruntime quantizer needs a PyTorch model (it exports it to ONNX with torch.onnx); "
                             f"a {framework.name} model has no ONNX export here; fix: pass a PyTorch model or "
                             "--quantizer mct")
        _import_ort()
        return model.eval(), []

    def export_onnx(self, model: Any, sample: list[np.ndarray], path: Path) -> list[str]:
        """Write ``model`` as ONNX to ``path`` (dynamic batch axis); its input names."""
        import torch

        names = [f"input_{i}" if len(sample) > 1 else "input" for i in range(len(sample))]
        flat = _flat_outputs_module(model)
        with torch.no_grad():
            count = len(flat(*(torch.from_numpy(np.ascontiguousarray(s[:1], dtype=np.float32)) for s in sample)))
        outputs = [f"output_{i}" for i in range(count)]
        torch.onnx.export(flat, tuple(torch.from_numpy(np.ascontiguousarray(s[:1], dtype=np.float32)) for s in sample),
                          str(path), input_names=names, output_names=outputs, opset_version=OPSET, dynamo=False,
                          dynamic_axes={n: {0: "batch"} for n in names + outputs})
        return names

    def quantize(self, framework: Framework, model: Any, data_gen: DataGen,
                 settings: ORTSettings) -> tuple[Any, float]:
        ort = _import_ort()
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        first = next(iter(data_gen()), None)
        if first is None:
            raise UsageError("the calibration data generator yields no batch")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="repcurate-ort-") as work, _quiet_ort():
            float_path, quant_path = Path(work) / "float.onnx", Path(work) / "quantized.onnx"
            names = self.export_onnx(model, list(first), float_path)
            quantize_static(str(float_path), str(quant_path), calibration_reader(data_gen, names),
                            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt4 if settings.weights_bits == 4 else QuantType.QInt8,
                            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[settings.calibration]))
            onnx_bytes = quant_path.read_bytes()
        seconds = time.perf_counter() - started
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        return _make_module(session, onnx_bytes), seconds

    def export_suffix(self, framework: Framework) -> str:
        return ".onnx"

    def require_exporter(self, framework: Framework) -> None:
        _import_ort()

    def export(self, framework: Framework, q_model: Any, path: Path, data_gen: DataGen) -> None:
        Path(path).write_bytes(q_model.onnx_bytes)
