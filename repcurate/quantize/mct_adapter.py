"""The one place that talks to MCT's PTQ API (PyTorch path)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from repcurate.errors import UsageError

WEIGHT_BITS = (8, 4, 2)


def target_platform(spec: str = "imx500:1.0") -> Any:
    """``device:version`` → MCT target platform capabilities (e.g. ``imx500:1.0``, ``tflite:1.0``)."""
    import model_compression_toolkit as mct

    device, _, version = spec.partition(":")
    try:
        return mct.get_target_platform_capabilities(tpc_version=version or "1.0", device_type=device)
    except Exception as exc:  # MCT raises bare exceptions for unknown devices/versions
        raise UsageError(f"--tpc {spec!r}: {exc}; fix: e.g. imx500:1.0, tflite:1.0, qnnpack:1.0") from None


def core_config(*, bias_correction: bool, weights_bits: int) -> Any:
    """MCT CoreConfig: bias correction on/off and the kernel bit-width of every Conv2d / Linear."""
    import model_compression_toolkit as mct
    import torch.nn as nn
    from model_compression_toolkit.core.common.network_editors import NodeTypeFilter

    if weights_bits not in WEIGHT_BITS:
        raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS}")
    bit_widths = mct.core.BitWidthConfig()
    if weights_bits != 8:
        bit_widths.set_manual_weights_bit_width([NodeTypeFilter(nn.Conv2d), NodeTypeFilter(nn.Linear)],
                                                weights_bits, "weight")
    return mct.core.CoreConfig(quantization_config=mct.core.QuantizationConfig(weights_bias_correction=bias_correction),
                               bit_width_config=bit_widths)


def quantize_torch(model: Any, data_gen: Callable[[], Iterator[list[np.ndarray]]], *, bias_correction: bool,
                   weights_bits: int, tpc: Any) -> tuple[Any, float]:
    """Run ``pytorch_post_training_quantization``; returns the quantized model and its wall time."""
    import model_compression_toolkit as mct

    started = time.perf_counter()
    q_model, _info = mct.ptq.pytorch_post_training_quantization(
        model, data_gen, core_config=core_config(bias_correction=bias_correction, weights_bits=weights_bits),
        target_platform_capabilities=tpc)
    return q_model, time.perf_counter() - started


def torch_logits(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Model outputs on ``x`` (CPU or the model's device), float64."""
    import torch

    parameters = list(model.parameters())
    device = parameters[0].device if parameters else torch.device("cpu")
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)).to(device)
            outputs.append(model(batch).detach().float().cpu().numpy())
    return np.concatenate(outputs).astype(np.float64)
