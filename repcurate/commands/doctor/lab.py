"""The doctor's shared experiment state: the lab that runs and scores PTQ experiments, the incumbent
configuration, and what every step may use. Its own module, so run, steps and culprits import it and not
each other."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from repcurate.commands.doctor.probe import NEGATIVE_ACTIVATIONS, NodeStats
from repcurate.commands.doctor.result import Experiment
from repcurate.evaluate import EvalData, model_outputs
from repcurate.frameworks.base import Framework
from repcurate.quantize.mct import MCTQuantizer, MCTSettings

log = logging.getLogger("repcurate")

#: Relative cost of one GPTQ run vs one PTQ run, for budgeting (measured on the digits CNN: 5 epochs ≈ 9×).
GPTQ_COST = 10.0


@dataclass
class Lab:
    """Runs MCT experiments on one model within a time budget and scores them on the eval images."""

    quantizer: MCTQuantizer
    framework: Framework
    model: Any
    data_gen: Any
    evaluation: EvalData
    tpc: Any  # the target platform of ``tpc_spec`` (a setting may name another: the detection-head fix)
    budget_seconds: float
    started: float
    runs: int = 0
    run_seconds: float = 0.0
    baseline_model: Any = None  # kept for inspection: XQuant and the quantized node names
    kept_model: Any = None  # the quantized model of the last run measured with keep_model=True
    tpc_spec: str = "imx500:1.0"

    def elapsed(self) -> float:
        """Seconds since the doctor started."""
        return time.perf_counter() - self.started

    def estimate(self, settings: MCTSettings) -> float:
        """Expected seconds of one run of ``settings`` (mean of past runs; GPTQ costs more)."""
        mean = self.run_seconds / self.runs if self.runs else 0.0
        return mean * (GPTQ_COST if settings.gptq_epochs is not None else 1.0)

    def measure(self, settings: MCTSettings, step: str, *, keep_as_baseline: bool = False,
                keep_model: bool = False) -> Experiment:
        """One PTQ run of ``settings`` scored on the eval images, unless the budget would be exceeded (the
        first run always happens); ``keep_as_baseline`` keeps its quantized model as ``baseline_model``,
        ``keep_model`` as ``kept_model``."""
        if self.runs and self.elapsed() + self.estimate(settings) > self.budget_seconds:
            log.info("doctor %-22s skipped (budget): %s", step, settings.label())
            return Experiment(settings, skipped="time budget")
        started = time.perf_counter()
        core = settings.core_config(self.framework.kernel_types(self.model))
        tpc = self.tpc if settings.tpc == self.tpc_spec else self.quantizer.platform(settings.tpc)
        q_model, _seconds = self.quantizer.run(self.framework, self.model, self.data_gen, core, tpc,
                                               weights_memory=settings.weights_memory, gptq_epochs=settings.gptq_epochs)
        value, hits = self.evaluation.measure(model_outputs(self.framework, q_model, self.evaluation.x))
        if keep_as_baseline:
            self.baseline_model = q_model
        if keep_model:
            self.kept_model = q_model
        seconds = time.perf_counter() - started
        self.runs += 1
        self.run_seconds += seconds
        log.info("doctor %-22s run %d (%.1f s, %.0f s of %.0f s budget): %s → %.2f", step, self.runs, seconds,
                 self.elapsed(), self.budget_seconds, settings.label(), value * 100)
        return Experiment(settings, metric=value, seconds=seconds, hits=hits)


@dataclass
class Incumbent:
    """The best configuration measured so far."""

    settings: MCTSettings
    metric: float
    hits: Any = field(default=None, repr=False)


@dataclass
class StepContext:
    """What every step may use."""

    lab: Lab
    stats: dict[str, NodeStats]
    concats: list[tuple[str, list[str]]]
    kinds: dict[str, str]
    activation_nodes: Callable[[Any], list[str]]
    min_gain: float
    float_value: float
    tolerance: float
    set_problem: bool
    gptq_epochs: int
    xquant_negative: list[str] = field(default_factory=list)
    inputs: dict[str, list[str]] = field(default_factory=dict)  # node → the nodes it reads (graph order)

    def short(self, metric: float) -> bool:
        """Whether ``metric`` is more than the tolerance below float."""
        return self.float_value - metric > self.tolerance + 1e-12

    def negative_activations(self) -> dict[str, NodeStats]:
        """The activation nodes that output negative values on the set (the nodes MCT's shift-negative
        correction rewrites: negative-going activation kinds, or those XQuant flags)."""
        return {name: s for name, s in self.stats.items()
                if (s.kind in NEGATIVE_ACTIVATIONS or name in self.xquant_negative) and s.negative_fraction > 0}
