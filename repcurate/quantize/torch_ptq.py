"""MCT PTQ of PyTorch models: ``pytorch_post_training_quantization`` and the ONNX exporter."""
from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import MissingDependencyError
from repcurate.quantize.mct_adapter import DataGen, core_config, run_mct
from repcurate.quantize.rewrite import make_mct_compatible


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


class TorchPTQ:
    """PyTorch models through ``mct.ptq.pytorch_post_training_quantization``."""

    framework = "torch"
    export_suffix = ".onnx"

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        rewritten, count = make_mct_compatible(model.eval())
        notes = [f"replaced {count} static-same-padding convolutions by ZeroPad2d + Conv2d (outputs unchanged)"] if count else []
        return rewritten, notes

    def quantize(self, model: Any, data_gen: DataGen, *, bias_correction: bool, weights_bits: int,
                 tpc: Any) -> tuple[Any, float]:
        config = core_config(bias_correction=bias_correction, weights_bits=weights_bits, kernels=self.kernels(model))
        return self.run(model, data_gen, config, tpc)

    def kernels(self, model: Any) -> list[tuple[type, str]]:
        import torch.nn as nn

        present = {type(module) for module in model.modules()}  # MCT refuses a filter that matches no layer
        return [(layer, "weight") for layer in (nn.Conv2d, nn.Linear, nn.ConvTranspose2d) if layer in present]

    def kernel_weights(self, model: Any) -> int:
        kinds = tuple(layer for layer, _ in self.kernels(model))
        return int(sum(m.weight.numel() for m in model.modules() if kinds and isinstance(m, kinds)))

    def run(self, model: Any, data_gen: DataGen, core: Any, tpc: Any, *, weights_memory: float | None = None,
            gptq_epochs: int | None = None) -> tuple[Any, float]:
        import model_compression_toolkit as mct

        return run_mct(mct.ptq.pytorch_post_training_quantization, mct.gptq.pytorch_gradient_post_training_quantization,
                       mct.gptq.get_pytorch_gptq_config, model, data_gen, core, tpc, weights_memory=weights_memory,
                       gptq_epochs=gptq_epochs)

    def outputs(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray | list[np.ndarray]:
        """The model's outputs on ``x``: one array for a single-tensor model, a list of arrays (one per output)
        for a model returning a tuple or list of tensors (MCT's quantized models return a list)."""
        import torch

        parameters = list(model.parameters())
        device = parameters[0].device if parameters else torch.device("cpu")
        outputs: list[list[np.ndarray]] = []
        single = True
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)).to(device)
                result = model(batch)
                single = isinstance(result, torch.Tensor)
                outputs.append([t.detach().float().cpu().numpy() for t in ([result] if single else result)])
        arrays = [np.concatenate(parts).astype(np.float64) for parts in zip(*outputs)]
        return arrays[0] if single else arrays

    def require_exporter(self) -> None:
        if importlib.util.find_spec("onnx") is None:
            raise MissingDependencyError("onnx", extra="export", purpose="exporting ONNX models")

    def export(self, q_model: Any, path: Path, data_gen: DataGen) -> None:
        import model_compression_toolkit as mct

        self.require_exporter()
        with legacy_onnx_exporter():
            mct.exporter.pytorch_export_model(q_model, save_model_path=str(path), repr_dataset=data_gen)
