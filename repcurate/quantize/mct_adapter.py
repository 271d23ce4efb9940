"""What every MCT PTQ run shares: target platform, CoreConfig, and the per-framework backend."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from repcurate.errors import UsageError

WEIGHT_BITS = (8, 4, 2)

#: A zero-argument callable returning a fresh iterator of ``[batch]`` lists (MCT's representative dataset).
DataGen = Callable[[], Iterator[list[np.ndarray]]]


def target_platform(spec: str = "imx500:1.0") -> Any:
    """``device:version`` → MCT target platform capabilities (e.g. ``imx500:1.0``, ``tflite:1.0``)."""
    import model_compression_toolkit as mct

    device, _, version = spec.partition(":")
    try:
        return mct.get_target_platform_capabilities(tpc_version=version or "1.0", device_type=device)
    except Exception as exc:  # MCT raises bare exceptions for unknown devices/versions
        raise UsageError(f"--tpc {spec!r}: {exc}; fix: e.g. imx500:1.0, tflite:1.0, qnnpack:1.0") from None


def core_config(*, bias_correction: bool, weights_bits: int, kernels: Sequence[tuple[type, str]]) -> Any:
    """MCT CoreConfig: bias correction on/off, and ``weights_bits`` for every layer type in ``kernels``
    (pairs of layer class and the name of its kernel attribute)."""
    import model_compression_toolkit as mct
    from model_compression_toolkit.core.common.network_editors import NodeTypeFilter

    if weights_bits not in WEIGHT_BITS:
        raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS}")
    bit_widths = mct.core.BitWidthConfig()
    if weights_bits != 8 and kernels:
        bit_widths.set_manual_weights_bit_width([NodeTypeFilter(layer) for layer, _ in kernels],
                                                [weights_bits] * len(kernels), [attr for _, attr in kernels])
    return mct.core.CoreConfig(quantization_config=mct.core.QuantizationConfig(weights_bias_correction=bias_correction),
                               bit_width_config=bit_widths)


class PTQBackend(Protocol):
    """One framework's way to prepare, quantize, run and export a model with MCT."""

    framework: str
    export_suffix: str

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        """The float model MCT will quantize, and the output-preserving rewrites applied to it."""

    def quantize(self, model: Any, data_gen: DataGen, *, bias_correction: bool, weights_bits: int,
                 tpc: Any) -> tuple[Any, float]:
        """MCT post-training quantization; the quantized model and its wall time in seconds."""

    def outputs(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Model outputs (logits) on ``x``, float64."""

    def require_exporter(self) -> None:
        """Raise MissingDependencyError when exporting would fail for a missing package."""

    def export(self, q_model: Any, path: Path, data_gen: DataGen) -> None:
        """Write ``q_model`` with MCT's exporter to ``path``."""


def backend_for(framework: str) -> PTQBackend:
    """The PTQ backend of ``framework`` (``torch`` or ``keras``)."""
    if framework == "torch":
        from repcurate.quantize.torch_ptq import TorchPTQ

        return TorchPTQ()
    if framework == "keras":
        from repcurate.quantize.keras_ptq import KerasPTQ

        return KerasPTQ()
    raise UsageError(f"no MCT backend for framework {framework!r}")
