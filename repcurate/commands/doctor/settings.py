"""One PTQ configuration the doctor tries: MCT's CoreConfig fields as plain, printable data."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from repcurate.frameworks.registry import get as framework_named
from repcurate.quantize.mct import core_config


@dataclass(frozen=True)
class PTQSettings:
    """What differs from MCT's defaults in one PTQ run.

    ``quantization`` holds ``QuantizationConfig`` fields (sorted pairs); ``activation_16bit`` names
    nodes the network editor keeps at 16-bit activations (a debugging aid, not a deployment setting);
    ``manual_16bit`` names nodes whose activations MCT's ``BitWidthConfig`` sets to 16 bits (a deployment setting:
    the detection-head fix, on a ``tpc`` that allows 16 bits there);
    ``weights_memory`` is a mixed-precision weights-memory target in bytes; ``gptq_epochs`` switches
    to GPTQ.
    """

    weights_bits: int = 8
    quantization: tuple[tuple[str, Any], ...] = ()
    activation_16bit: tuple[str, ...] = ()
    weights_memory: float | None = None
    gptq_epochs: int | None = None
    tpc: str = field(default="imx500:1.0", compare=False)
    manual_16bit: tuple[str, ...] = ()

    def with_quantization(self, **fields: Any) -> PTQSettings:
        """A copy with these ``QuantizationConfig`` fields set."""
        merged = {**dict(self.quantization), **fields}
        return replace(self, quantization=tuple(sorted(merged.items())))

    def quantization_dict(self) -> dict[str, Any]:
        """The ``QuantizationConfig`` overrides as a dict."""
        return dict(self.quantization)

    def core_config(self, kernels: list[tuple[type, str]]) -> Any:
        """The MCT ``CoreConfig`` for a model with these kernel layer types."""
        return core_config(weights_bits=self.weights_bits, kernels=kernels, quantization=self.quantization_dict(),
                           activation_16bit=self.activation_16bit, mixed_precision=self.weights_memory is not None,
                           manual_16bit=self.manual_16bit)

    def label(self) -> str:
        """A short human name for tables and progress lines."""
        parts = [f"{k}={v}" for k, v in self.quantization] or ["MCT defaults"]
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
        glue = framework_named(framework).mct
        device, _, version = self.tpc.partition(":")
        qc_args = ", ".join(f"{k}={v!r}" for k, v in self.quantization)
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
