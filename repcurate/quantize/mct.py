"""The MCT quantizer: target platform, CoreConfig, PTQ / GPTQ runs and export, for any framework with MCT glue.

The framework object (:attr:`Framework.mct`) supplies MCT's facade functions, exporter and model rewrites;
this module builds the configs and runs them, so the quantizer is chosen by name and the framework by the
model. The doctor uses :func:`core_config` and :meth:`MCTQuantizer.run` directly (it automates MCT's guide).
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repcurate.errors import UsageError
from repcurate.frameworks.base import Framework
from repcurate.quantize.base import DataGen
from repcurate.quantize.quiet import third_party_output_hidden

WEIGHT_BITS = (8, 4, 2)


def target_platform(spec: str = "imx500:1.0") -> Any:
    """``device:version`` → MCT target platform capabilities (e.g. ``imx500:1.0``, ``tflite:1.0``)."""
    import model_compression_toolkit as mct

    device, _, version = spec.partition(":")
    try:
        return mct.get_target_platform_capabilities(tpc_version=version or "1.0", device_type=device)
    except Exception as exc:  # noqa: BLE001 - MCT raises bare exceptions for unknown devices/versions
        raise UsageError(f"--tpc {spec!r}: {exc}; fix: e.g. imx500:1.0, tflite:1.0, qnnpack:1.0") from None


def core_config(*, bias_correction: bool = True, weights_bits: int, kernels: Sequence[tuple[type, str]],
                quantization: dict[str, Any] | None = None, activation_16bit: Sequence[str] = (),
                mixed_precision: bool = False, manual_16bit: Sequence[str] = ()) -> Any:
    """MCT CoreConfig: bias correction on/off, and ``weights_bits`` for every layer type in ``kernels``
    (pairs of layer class and the name of its kernel attribute). ``quantization`` overrides
    ``QuantizationConfig`` fields (it wins over ``bias_correction``); ``activation_16bit`` names graph nodes
    whose activations the network editor keeps at 16 bits (a debugging aid); ``mixed_precision`` lets MCT
    pick per-layer weight bits under a resource target instead of fixing ``weights_bits``; ``manual_16bit`` names graph
    nodes whose activations ``BitWidthConfig.set_manual_activation_bit_width`` sets to 16 bits (a deployment setting,
    on a target platform that allows 16 bits there, e.g. IMX500 TPC 4.0)."""
    import model_compression_toolkit as mct
    from model_compression_toolkit.core.common.network_editors import (
        ChangeCandidatesActivationQuantConfigAttr,
        EditRule,
        NodeNameFilter,
        NodeTypeFilter,
    )

    if weights_bits not in WEIGHT_BITS:
        raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS}")
    bit_widths = mct.core.BitWidthConfig()
    if weights_bits != 8 and kernels and not mixed_precision:
        bit_widths.set_manual_weights_bit_width([NodeTypeFilter(layer) for layer, _ in kernels],
                                                [weights_bits] * len(kernels), [attr for _, attr in kernels])
    if manual_16bit:
        bit_widths.set_manual_activation_bit_width([NodeNameFilter(name) for name in manual_16bit], 16)
    fields = {"weights_bias_correction": bias_correction, **(quantization or {})}
    editor = [EditRule(filter=NodeNameFilter(name), action=ChangeCandidatesActivationQuantConfigAttr(activation_n_bits=16))
              for name in activation_16bit]
    extra = {"mixed_precision_config": mct.core.MixedPrecisionQuantizationConfig()} if mixed_precision else {}
    return mct.core.CoreConfig(quantization_config=mct.core.QuantizationConfig(**fields), bit_width_config=bit_widths,
                               debug_config=mct.core.DebugConfig(network_editor=editor), **extra)


@dataclass(frozen=True)
class MCTSettings:
    """One MCT PTQ configuration as ``confirm`` varies it: bias correction, uniform weight bits, target platform."""

    weights_bits: int = 8
    tpc: str = "imx500:1.0"
    bias_correction: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return f"bias correction {'on' if self.bias_correction else 'off'}, {self.weights_bits}-bit weights, {self.tpc}"


class MCTQuantizer:
    """Sony's Model Compression Toolkit: PTQ (and GPTQ, mixed precision for the doctor) of PyTorch and Keras
    models through the framework's :class:`MCTGlue`."""

    name = "mct"
    grid_axes = ("bias_correction",)
    default_axes: Mapping[str, Sequence[Any]] = {"bias_correction": (True, False)}
    weight_bits = WEIGHT_BITS
    base_fields = ("weights_bits", "tpc")

    def __init__(self) -> None:
        self._platforms: dict[str, Any] = {}

    def settings(self, **fields: Any) -> MCTSettings:
        settings = MCTSettings(**fields)
        if settings.weights_bits not in WEIGHT_BITS or isinstance(settings.weights_bits, bool):
            raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS}")
        if not isinstance(settings.bias_correction, bool):
            raise UsageError(f"bias_correction: {settings.bias_correction!r} is not True or False")
        return settings

    def grid(self, base: MCTSettings, axes: Mapping[str, Sequence[Any]] | None = None) -> list[MCTSettings]:
        axes = dict(axes if axes is not None else self.default_axes)
        unknown = sorted(set(axes) - set(self.grid_axes))
        if unknown:
            raise UsageError(f"MCT's settings grid has no axis {unknown[0]!r}; axes: {', '.join(self.grid_axes)}")
        names = [a for a in self.grid_axes if a in axes]
        return [self.settings(**{**base.to_dict(), **dict(zip(names, values))})
                for values in itertools.product(*(axes[a] for a in names))]

    def platform(self, spec: str) -> Any:
        """The target platform capabilities of ``spec``, resolved once per quantizer."""
        if spec not in self._platforms:
            self._platforms[spec] = target_platform(spec)
        return self._platforms[spec]

    def prepare(self, framework: Framework, model: Any) -> tuple[Any, list[str]]:
        return framework.mct.prepare(model)

    def quantize(self, framework: Framework, model: Any, data_gen: DataGen,
                 settings: MCTSettings) -> tuple[Any, float]:
        config = core_config(bias_correction=settings.bias_correction, weights_bits=settings.weights_bits,
                             kernels=framework.kernel_types(model))
        return self.run(framework, model, data_gen, config, self.platform(settings.tpc))

    def run(self, framework: Framework, model: Any, data_gen: DataGen, core: Any, tpc: Any, *,
            weights_memory: float | None = None, gptq_epochs: int | None = None) -> tuple[Any, float]:
        """MCT PTQ (or GPTQ with ``gptq_epochs``) with a full CoreConfig and an optional weights-memory
        target in bytes (mixed precision); the quantized model and its wall time in seconds."""
        glue = framework.mct
        gptq, gptq_config = glue.gptq() if gptq_epochs is not None else (None, None)
        return run_mct(glue.ptq(), gptq, gptq_config, model, data_gen, core, tpc, weights_memory=weights_memory,
                       gptq_epochs=gptq_epochs)

    def export_suffix(self, framework: Framework) -> str:
        return framework.mct.export_suffix

    def require_exporter(self, framework: Framework) -> None:
        framework.mct.require_exporter()

    def export(self, framework: Framework, q_model: Any, path: Path, data_gen: DataGen) -> None:
        with third_party_output_hidden():
            framework.mct.export(q_model, path, data_gen)


def run_mct(ptq: Callable[..., Any], gptq: Callable[..., Any] | None, gptq_config: Callable[..., Any] | None, model: Any,
            data_gen: DataGen, core: Any, tpc: Any, *, weights_memory: float | None = None,
            gptq_epochs: int | None = None) -> tuple[Any, float]:
    """One MCT quantization through a framework's facade functions (``ptq``, ``gptq`` and its config
    factory): PTQ, or GPTQ with ``gptq_epochs``; a weights-memory target in bytes turns on mixed precision."""
    import model_compression_toolkit as mct

    target = mct.core.ResourceUtilization(weights_memory=weights_memory) if weights_memory is not None else None
    started = time.perf_counter()
    with third_party_output_hidden():  # MCT's tqdm bars and per-run log lines: shown with -v / --debug
        if gptq_epochs is not None and gptq is not None and gptq_config is not None:
            q_model, _info = gptq(model, data_gen, target_resource_utilization=target, core_config=core,
                                  gptq_config=gptq_config(n_epochs=gptq_epochs), target_platform_capabilities=tpc)
        else:
            q_model, _info = ptq(model, data_gen, target_resource_utilization=target, core_config=core,
                                 target_platform_capabilities=tpc)
    return q_model, time.perf_counter() - started
