"""The MCT quantizer: target platform, CoreConfig, PTQ / GPTQ runs and export, for any framework with MCT glue.

The framework object (:attr:`Framework.mct`) supplies MCT's facade functions, exporter and model rewrites;
this module builds the configs and runs them, so the quantizer is chosen by name and the framework by the
model. The doctor uses :func:`core_config` and :meth:`MCTQuantizer.run` directly (it automates MCT's guide).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from repcurate.errors import UsageError
from repcurate.frameworks.base import Framework
from repcurate.quantize.base import DataGen, GridAxis, settings_grid
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
    """One MCT configuration: what differs from MCT's defaults in one PTQ run, as plain, printable data
    (``confirm``'s grid points and every configuration the doctor tries).

    ``quantization`` holds ``QuantizationConfig`` fields (sorted pairs); ``activation_16bit`` names
    nodes the network editor keeps at 16-bit activations (a debugging aid, not a deployment setting);
    ``manual_16bit`` names nodes whose activations MCT's ``BitWidthConfig`` sets to 16 bits (a deployment setting:
    the detection-head fix, on a ``tpc`` that allows 16 bits there); ``weights_memory`` is a mixed-precision
    weights-memory target in bytes; ``gptq_epochs`` switches
    to GPTQ; ``bias_correction`` is ``confirm``'s grid axis (``weights_bias_correction`` in ``quantization``
    wins over it).
    """

    weights_bits: int = 8
    quantization: tuple[tuple[str, Any], ...] = ()
    activation_16bit: tuple[str, ...] = ()
    weights_memory: float | None = None
    gptq_epochs: int | None = None
    tpc: str = field(default="imx500:1.0", compare=False)
    bias_correction: bool = True
    manual_16bit: tuple[str, ...] = ()

    def with_quantization(self, **fields: Any) -> MCTSettings:
        """A copy with these ``QuantizationConfig`` fields set."""
        merged = {**dict(self.quantization), **fields}
        return replace(self, quantization=tuple(sorted(merged.items())))

    def quantization_dict(self) -> dict[str, Any]:
        """The ``QuantizationConfig`` overrides as a dict (bias correction off counts as one)."""
        fields = dict(self.quantization)
        if not self.bias_correction:
            fields.setdefault("weights_bias_correction", False)
        return fields

    def core_config(self, kernels: list[tuple[type, str]]) -> Any:
        """The MCT ``CoreConfig`` for a model with these kernel layer types."""
        return core_config(weights_bits=self.weights_bits, kernels=kernels, quantization=self.quantization_dict(),
                           activation_16bit=self.activation_16bit, mixed_precision=self.weights_memory is not None,
                           manual_16bit=self.manual_16bit)

    def label(self) -> str:
        """A short human name for tables and progress lines."""
        parts = [f"{k}={v}" for k, v in sorted(self.quantization_dict().items())] or ["MCT defaults"]
        if self.weights_memory is not None:
            parts.append(f"mixed precision ≤ {self.weights_memory:.0f} B weights")
        else:
            parts.append(f"{self.weights_bits}-bit weights")
        if self.manual_16bit:
            parts.append(f"16-bit activations at {', '.join(self.manual_16bit)} (TPC {self.tpc})")
        if self.activation_16bit:
            parts.append(f"16-bit activations at {', '.join(self.activation_16bit)}")
        if self.gptq_epochs is not None:
            parts.append(f"GPTQ {self.gptq_epochs} epochs")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the recommended configuration's ``json``)."""
        return {"quantization_config": self.quantization_dict(), "weights_bits": self.weights_bits,
                "activation_16bit_debug_nodes": list(self.activation_16bit),
                "activation_16bit_nodes": list(self.manual_16bit), "weights_memory_bytes": self.weights_memory,
                "gptq_epochs": self.gptq_epochs, "tpc": self.tpc}

    def python(self, framework: str = "torch") -> str:
        """Copy-pasteable Python that builds this configuration and runs MCT with it (names from the framework's
        MCT glue: its facade functions and kernel layer types)."""
        from repcurate.frameworks.registry import get as framework_named

        glue = framework_named(framework).mct
        device, _, version = self.tpc.partition(":")
        qc_args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.quantization_dict().items()))
        lines = ["import model_compression_toolkit as mct"]
        if self.manual_16bit and not self.activation_16bit:
            lines.append("from model_compression_toolkit.core.common.network_editors import NodeNameFilter")
        if self.activation_16bit:
            lines.append("from model_compression_toolkit.core.common.network_editors import (\n"
                         "    ChangeCandidatesActivationQuantConfigAttr, EditRule, NodeNameFilter)")
        import_line, layer_types, attr = glue.snippet_kernels(self.weights_bits)
        if self.weights_bits != 8 and self.weights_memory is None:
            lines.append(import_line)
            lines.append("from model_compression_toolkit.core.common.network_editors import NodeTypeFilter")
        lines += ["", f"tpc = mct.get_target_platform_capabilities(tpc_version={version or '1.0'!r}, device_type={device!r})",
                  f"quantization_config = mct.core.QuantizationConfig({qc_args})", "bit_width_config = mct.core.BitWidthConfig()"]
        if self.weights_bits != 8 and self.weights_memory is None:
            lines.append(f"bit_width_config.set_manual_weights_bit_width([NodeTypeFilter({layer_types[0]}), "
                         f"NodeTypeFilter({layer_types[1]})], [{self.weights_bits}, {self.weights_bits}], "
                         f"[{attr!r}, {attr!r}])")
        if self.manual_16bit:
            lines.append("# 16-bit activations on the detection head's box decoding (the TPC above allows them)")
            names = ", ".join(f"NodeNameFilter({name!r})" for name in self.manual_16bit)
            lines.append(f"bit_width_config.set_manual_activation_bit_width([{names}], 16)")
        core_args = ["quantization_config=quantization_config", "bit_width_config=bit_width_config"]
        if self.activation_16bit:
            rules = ",\n    ".join(f"EditRule(filter=NodeNameFilter({name!r}), "
                                   "action=ChangeCandidatesActivationQuantConfigAttr(activation_n_bits=16))"
                                   for name in self.activation_16bit)
            lines.append("# debugging aid only: 16-bit activations where the doctor found the culprits")
            lines.append(f"network_editor = [\n    {rules}]")
            core_args.append("debug_config=mct.core.DebugConfig(network_editor=network_editor)")
        if self.weights_memory is not None:
            core_args.append("mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig()")
        lines.append("core_config = mct.core.CoreConfig(" + ", ".join(core_args) + ")")
        prefix = glue.facade
        extra = ""
        if self.weights_memory is not None:
            extra += f", target_resource_utilization=mct.core.ResourceUtilization(weights_memory={self.weights_memory:.0f})"
        if self.gptq_epochs is not None:
            call = (f"mct.gptq.{prefix}_gradient_post_training_quantization(model, representative_data_gen, "
                    f"gptq_config=mct.gptq.get_{prefix}_gptq_config(n_epochs={self.gptq_epochs}), core_config=core_config"
                    f"{extra}, target_platform_capabilities=tpc)")
        else:
            call = (f"mct.ptq.{prefix}_post_training_quantization(model, representative_data_gen, "
                    f"core_config=core_config{extra}, target_platform_capabilities=tpc)")
        lines.append(f"quantized_model, quantization_info = {call}")
        return "\n".join(lines) + "\n"


class MCTQuantizer:
    """Sony's Model Compression Toolkit: PTQ (and GPTQ, mixed precision for the doctor) of PyTorch and Keras
    models through the framework's :class:`MCTGlue`."""

    name = "mct"
    axes = (GridAxis("bias_correction", {"on": True, "off": False}, "MCT's grid (default: on,off)", metavar="on,off",
                     usage="use on, off or on,off"),)
    weight_bits = WEIGHT_BITS
    base_fields = ("weights_bits", "tpc")

    def __init__(self) -> None:
        self._platforms: dict[str, Any] = {}

    def settings(self, **fields: Any) -> MCTSettings:
        """Validated :class:`MCTSettings` (``confirm``'s base and grid points, the doctor's configurations)."""
        settings = MCTSettings(**fields)
        if settings.weights_bits not in WEIGHT_BITS or isinstance(settings.weights_bits, bool):
            raise UsageError(f"--weights-bits must be one of {WEIGHT_BITS}")
        if not isinstance(settings.bias_correction, bool):
            raise UsageError(f"bias_correction: {settings.bias_correction!r} is not True or False")
        return settings

    def grid(self, base: MCTSettings, axes: Mapping[str, Sequence[Any]] | None = None) -> list[MCTSettings]:
        return settings_grid(self, base, axes)

    def platform(self, spec: str) -> Any:
        """The target platform capabilities of ``spec``, resolved once per quantizer."""
        if spec not in self._platforms:
            self._platforms[spec] = target_platform(spec)
        return self._platforms[spec]

    def prepare(self, framework: Framework, model: Any) -> tuple[Any, list[str]]:
        return framework.mct.prepare(model)

    def quantize(self, framework: Framework, model: Any, data_gen: DataGen,
                 settings: MCTSettings) -> tuple[Any, float]:
        config = settings.core_config(framework.kernel_types(model))
        return self.run(framework, model, data_gen, config, self.platform(settings.tpc), weights_memory=settings.weights_memory,
                        gptq_epochs=settings.gptq_epochs)

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
