"""What MCT needs for PyTorch: its facade functions, the ONNX exporter, rewrites, the fx preflight."""
from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import MissingDependencyError
from repcurate.frameworks.base import Preflight


@contextlib.contextmanager
def legacy_onnx_exporter() -> Iterator[None]:
    """Make ``torch.onnx.export`` use the TorchScript exporter while MCT exports.

    MCT 2.6.1 calls ``torch.onnx.export`` without ``dynamo=``; torch >= 2.9 then picks the dynamo
    exporter, which needs ``onnxscript`` (whose numpy 2 / protobuf 5 requirements break TensorFlow 2.15).
    """
    import torch.onnx

    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = original


class TorchMCT:
    """PyTorch models through ``mct.ptq.pytorch_post_training_quantization`` and ``pytorch_export_model``."""

    export_suffix = ".onnx"
    facade = "pytorch"

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        from repcurate.frameworks.torch_rewrite import make_mct_compatible

        rewritten, count = make_mct_compatible(model.eval())
        notes = [f"replaced {count} static-same-padding convolutions by ZeroPad2d + Conv2d (outputs unchanged)"] if count else []
        return rewritten, notes

    def ptq(self) -> Callable[..., Any]:
        import model_compression_toolkit as mct

        return mct.ptq.pytorch_post_training_quantization

    def gptq(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        import model_compression_toolkit as mct

        return mct.gptq.pytorch_gradient_post_training_quantization, mct.gptq.get_pytorch_gptq_config

    def require_exporter(self) -> None:
        if importlib.util.find_spec("onnx") is None:
            raise MissingDependencyError("onnx", extra="export", purpose="exporting ONNX models")

    def set_device(self, device: str) -> None:
        """MCT's own device choice (``set_working_device``; by default CUDA whenever torch sees it) set to ``device``."""
        import torch
        from model_compression_toolkit.core.pytorch.pytorch_device_config import get_working_device, set_working_device

        from repcurate.frameworks.device import concrete_device

        device = concrete_device(device)
        set_working_device(device)
        if get_working_device() != torch.device(device):
            raise RuntimeError(f"MCT refused the device {device!r} (it kept {get_working_device()})")

    def export(self, q_model: Any, path: Path, data_gen: Any) -> None:
        import model_compression_toolkit as mct

        self.require_exporter()
        with legacy_onnx_exporter():
            mct.exporter.pytorch_export_model(q_model, save_model_path=str(path), repr_dataset=data_gen)

    def preflight(self, model: Any, sample: np.ndarray) -> Preflight:
        from repcurate.frameworks.torch_trace import trace

        return trace(model, sample)

    def activation_nodes(self, q_model: Any) -> list[str]:
        """The activation holder modules' names, less their suffix: the fx node names."""
        suffix = "_activation_holder_quantizer"
        return [name[: -len(suffix)] for name, _module in q_model.named_modules() if name.endswith(suffix)]

    def activation_bits(self, q_model: Any) -> dict[str, int]:
        suffix = "_activation_holder_quantizer"
        return {name[: -len(suffix)]: int(module.activation_holder_quantizer.num_bits)
                for name, module in q_model.named_modules() if name.endswith(suffix)}

    def xquant(self) -> Callable[..., Any] | None:
        from model_compression_toolkit.xquant import xquant_report_troubleshoot_pytorch_experimental

        return xquant_report_troubleshoot_pytorch_experimental

    def snippet_kernels(self, weights_bits: int) -> tuple[str, list[str], str]:
        return "import torch.nn as nn", ["nn.Conv2d", "nn.Linear"], "weight"
