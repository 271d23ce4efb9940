"""The benchmarks' PTQ helper: one framework's model through the MCT quantizer with explicit weight bits,
bias correction and a resolved target platform (what the benchmarks measured before the quantizer registry)."""
from __future__ import annotations

from typing import Any

import numpy as np

from repcurate.frameworks.registry import get as framework_named
from repcurate.quantize.mct import core_config
from repcurate.quantize.registry import get as quantizer_named


class PTQBackend:
    """``prepare`` / ``quantize`` / ``outputs`` (the first output, float64) for one framework, with MCT."""

    def __init__(self, framework: str) -> None:
        self.framework = framework_named(framework)
        self.quantizer = quantizer_named("mct")

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        return self.quantizer.prepare(self.framework, model)

    def quantize(self, model: Any, data_gen: Any, *, bias_correction: bool, weights_bits: int,
                 tpc: Any) -> tuple[Any, float]:
        core = core_config(bias_correction=bias_correction, weights_bits=weights_bits,
                           kernels=self.framework.kernel_types(model))
        return self.quantizer.run(self.framework, model, data_gen, core, tpc)  # type: ignore[attr-defined]

    def outputs(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return self.framework.outputs(model, x, batch_size)[0]


def backend_for(framework: str) -> PTQBackend:
    """The PTQ helper of ``framework`` (``torch`` or ``keras``)."""
    return PTQBackend(framework)
