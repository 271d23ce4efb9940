"""What every MCT PTQ run shares: target platform, CoreConfig, and the per-framework backend."""
from __future__ import annotations

import time
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


def core_config(*, bias_correction: bool = True, weights_bits: int, kernels: Sequence[tuple[type, str]],
                quantization: dict[str, Any] | None = None, activation_16bit: Sequence[str] = (),
                mixed_precision: bool = False) -> Any:
    """MCT CoreConfig: bias correction on/off, and ``weights_bits`` for every layer type in ``kernels``
    (pairs of layer class and the name of its kernel attribute). ``quantization`` overrides
    ``QuantizationConfig`` fields (it wins over ``bias_correction``); ``activation_16bit`` names graph nodes
    whose activations the network editor keeps at 16 bits (a debugging aid); ``mixed_precision`` lets MCT
    pick per-layer weight bits under a resource target instead of fixing ``weights_bits``."""
    import model_compression_toolkit as mct
    from model_compression_toolkit.core.common.network_editors import (
        ChangeCandidatesActivationQuantConfigAttr, EditRule, NodeNameFilter, NodeTypeFilter)

    if weights_bits not in WEIGHT_BITS:
        raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS}")
    bit_widths = mct.core.BitWidthConfig()
    if weights_bits != 8 and kernels and not mixed_precision:
        bit_widths.set_manual_weights_bit_width([NodeTypeFilter(layer) for layer, _ in kernels],
                                                [weights_bits] * len(kernels), [attr for _, attr in kernels])
    fields = {"weights_bias_correction": bias_correction, **(quantization or {})}
    editor = [EditRule(filter=NodeNameFilter(name), action=ChangeCandidatesActivationQuantConfigAttr(activation_n_bits=16))
              for name in activation_16bit]
    extra = {"mixed_precision_config": mct.core.MixedPrecisionQuantizationConfig()} if mixed_precision else {}
    return mct.core.CoreConfig(quantization_config=mct.core.QuantizationConfig(**fields), bit_width_config=bit_widths,
                               debug_config=mct.core.DebugConfig(network_editor=editor), **extra)


def run_mct(ptq: Callable[..., Any], gptq: Callable[..., Any], gptq_config: Callable[..., Any], model: Any,
            data_gen: DataGen, core: Any, tpc: Any, *, weights_memory: float | None = None,
            gptq_epochs: int | None = None) -> tuple[Any, float]:
    """One MCT quantization through a framework's facade functions (``ptq``, ``gptq`` and its config
    factory): PTQ, or GPTQ with ``gptq_epochs``; a weights-memory target in bytes turns on mixed precision."""
    import model_compression_toolkit as mct

    target = mct.core.ResourceUtilization(weights_memory=weights_memory) if weights_memory is not None else None
    started = time.perf_counter()
    if gptq_epochs is not None:
        q_model, _info = gptq(model, data_gen, target_resource_utilization=target, core_config=core,
                              gptq_config=gptq_config(n_epochs=gptq_epochs), target_platform_capabilities=tpc)
    else:
        q_model, _info = ptq(model, data_gen, target_resource_utilization=target, core_config=core,
                             target_platform_capabilities=tpc)
    return q_model, time.perf_counter() - started


class PTQBackend(Protocol):
    """One framework's way to prepare, quantize, run and export a model with MCT."""

    framework: str
    export_suffix: str

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        """The float model MCT will quantize, and the output-preserving rewrites applied to it."""

    def quantize(self, model: Any, data_gen: DataGen, *, bias_correction: bool, weights_bits: int,
                 tpc: Any) -> tuple[Any, float]:
        """MCT post-training quantization; the quantized model and its wall time in seconds."""

    def kernels(self, model: Any) -> list[tuple[type, str]]:
        """(layer type, kernel attribute) of every quantizable kernel type present in ``model``."""

    def kernel_weights(self, model: Any) -> int:
        """How many kernel weights ``model`` has (8-bit weights memory in bytes)."""

    def run(self, model: Any, data_gen: DataGen, core: Any, tpc: Any, *, weights_memory: float | None = None,
            gptq_epochs: int | None = None) -> tuple[Any, float]:
        """MCT PTQ (or GPTQ with ``gptq_epochs``) with a full CoreConfig and an optional weights-memory
        target in bytes (mixed precision); the quantized model and its wall time in seconds."""

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
