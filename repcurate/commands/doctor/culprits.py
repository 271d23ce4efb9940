"""Which layers' activation quantization costs the accuracy: adaptive group testing with MCT's network
editor (16-bit activations on a group of nodes per PTQ run), far fewer runs than one per layer."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from repcurate.commands.doctor.lab import Incumbent, StepContext
from repcurate.commands.doctor.result import Experiment


class _OutOfBudget(Exception):
    pass


@dataclass
class CulpritSearch:
    """The search's outcome, ready for a Finding."""

    status: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    experiments: list[Experiment] = field(default_factory=list)
    gain: float | None = None
    advice: list[str] = field(default_factory=list)


def _halves(nodes: list[str]) -> tuple[list[str], list[str]]:
    middle = len(nodes) // 2
    return nodes[:middle], nodes[middle:]


def find_culprits(candidates: list[str], kinds: dict[str, str], incumbent: Incumbent, context: StepContext) -> CulpritSearch:
    """Find a small set of nodes whose 16-bit activations recover the metric.

    First all nodes at 16 bits (is activation quantization the cause at all?), then one run per layer type
    when types group many nodes, then binary splitting inside the smallest recovering group; when neither half recovers alone, both halves
    hold culprits and each is searched with the other held at 16 bits — O(k log n) runs for k culprits.

    When the incumbent has shift-negative correction on and the model has negative-going activations, every run
    of the search (and the reference it is compared with, measured once more) has the correction off: MCT puts an
    Add after each activation it corrects and rejects (ValueError) a 16-bit activation there when the TPC gives
    Add 8 bits only, as IMX500's does. The candidates are then the quantized nodes of that reference run (the
    correction's own nodes, ``*_post_add``, do not exist without it).

    The search starts only when all nodes at 16 bits gain ``min_gain`` and the gain is significant by the task's
    paired test: a gain within noise would steer the halving by noise and spend the budget the escalation needs.
    """
    runs = _Runs(context, incumbent)
    if incumbent.settings.quantization_dict().get("shift_negative_activation_correction", True) \
            and context.negative_activations():
        rewritten = runs.without_shift_negative()
        if rewritten is None:
            return CulpritSearch("skipped", "time budget", experiments=runs.experiments)
        candidates = rewritten
    runs.order = {name: i for i, name in enumerate(candidates)}
    try:
        everything = runs.metric_of(candidates)
    except _OutOfBudget:
        return CulpritSearch("skipped", "time budget", experiments=runs.experiments)
    refused = runs.no_activation_cause(candidates, everything)
    if refused is not None:
        return refused
    target = (context.float_value - context.tolerance if everything >= context.float_value - context.tolerance
              else runs.reference.metric + 0.9 * (everything - runs.reference.metric))
    per_kind: dict[str, float] = {}
    try:
        culprits = runs.search(runs.start_group(candidates, kinds, target, per_kind), [], target)
        together = runs.metric_of(culprits)
        alone = {name: runs.metric_of([name]) for name in culprits} if len(culprits) > 1 else {culprits[0]: together}
    except _OutOfBudget:
        return CulpritSearch("skipped", "time budget ran out during the layer search",
                             {"all_16bit": everything, "per_type": per_kind, **runs.basis}, runs.experiments)
    return runs.found(candidates, kinds, culprits, alone, {"all_16bit": everything, "per_type": per_kind,
                                                           "target": target, "metric_culprits_16bit": together})


def _points(value: float) -> float:
    return round(value * 100, 2)


class _Runs:
    """The search's PTQ runs: each group of 16-bit nodes measured once against the reference configuration."""

    def __init__(self, context: StepContext, incumbent: Incumbent) -> None:
        self.context, self.lab, self.reference = context, context.lab, incumbent
        self.experiments: list[Experiment] = []
        self.measured: dict[frozenset[str], float] = {}
        self.hits: dict[frozenset[str], Any] = {}
        self.order: dict[str, int] = {}
        self.snc_off = False

    @property
    def basis(self) -> dict[str, Any]:
        return {"shift_negative_correction_off": self.snc_off, "reference": self.reference.metric}

    @property
    def note(self) -> str:
        return (f" (shift-negative correction off in these runs and in the reference, {_points(self.reference.metric):.2f}: "
                "MCT rejects 16-bit activations on the nodes it corrects)") if self.snc_off else ""

    def without_shift_negative(self) -> list[str] | None:
        """Measure the reference once more with shift-negative correction off; its quantized nodes are the
        candidates (None: out of budget)."""
        settings = self.reference.settings.with_quantization(shift_negative_activation_correction=False)
        measured_reference = self.lab.measure(settings, "culprit search", keep_model=True)
        self.experiments.append(measured_reference)
        if measured_reference.metric is None:
            return None
        self.reference, self.snc_off = Incumbent(settings, measured_reference.metric, measured_reference.hits), True
        return self.context.activation_nodes(self.lab.kept_model)

    def metric_of(self, nodes: list[str] | frozenset[str]) -> float:
        """The metric with ``nodes`` at 16-bit activations (measured once per group; :class:`_OutOfBudget`)."""
        key = frozenset(nodes)
        if key not in self.measured:
            settings = replace(self.reference.settings, activation_16bit=tuple(sorted(key, key=self.order.__getitem__)))
            experiment = self.lab.measure(settings, "culprit search")
            self.experiments.append(experiment)
            if experiment.metric is None:
                raise _OutOfBudget
            self.measured[key], self.hits[key] = experiment.metric, experiment.hits
        return self.measured[key]

    def no_activation_cause(self, candidates: list[str], everything: float) -> CulpritSearch | None:
        """The outcome when all nodes at 16 bits do not gain ``min_gain`` significantly (None: search on)."""
        reference = self.reference
        enough = everything - reference.metric >= self.context.min_gain - 1e-12
        if enough and self.lab.evaluation.significant(self.hits[frozenset(candidates)], reference.hits):
            return None
        why = "" if not enough else ", a gain the paired test cannot tell from noise"
        return CulpritSearch(
            "no gain" if not enough else "not significant",
            f"16-bit activations on all {len(candidates)} quantized nodes give {_points(everything):.2f} "
            f"(vs {_points(reference.metric):.2f}{why}): activation quantization is not what costs the accuracy{self.note}",
            {"all_16bit": everything, "candidates": candidates, **self.basis}, self.experiments,
            _points(everything - reference.metric),
            ["look at weight quantization instead: more weight bits or mixed precision (next step)"])

    def start_group(self, candidates: list[str], kinds: dict[str, str], target: float,
                    per_kind: dict[str, float]) -> list[str]:
        """The smallest layer type that recovers alone when types group many nodes (its runs in ``per_kind``),
        else every candidate."""
        by_kind: dict[str, list[str]] = {}
        for name in candidates:
            by_kind.setdefault(kinds.get(name, "?"), []).append(name)
        if not 1 < len(by_kind) <= len(candidates) // 4:  # type runs pay off only when types group many nodes
            return candidates
        for kind, nodes in by_kind.items():
            per_kind[kind] = self.metric_of(nodes)
        recovering = [nodes for kind, nodes in by_kind.items() if per_kind[kind] >= target - 1e-12]
        return min(recovering, key=len) if recovering else candidates

    def search(self, nodes: list[str], fixed: list[str], target: float) -> list[str]:
        """Binary splitting: the half that recovers with ``fixed`` at 16 bits, else both halves searched."""
        if len(nodes) == 1:
            return nodes
        first, second = _halves(nodes)
        if self.metric_of(fixed + first) >= target - 1e-12:
            return self.search(first, fixed, target)
        if self.metric_of(fixed + second) >= target - 1e-12:
            return self.search(second, fixed, target)
        found_first = self.search(first, fixed + second, target)
        return found_first + self.search(second, fixed + found_first, target)

    def found(self, candidates: list[str], kinds: dict[str, str], culprits: list[str], alone: dict[str, float],
              figures: dict[str, Any]) -> CulpritSearch:
        """The outcome naming the culprits, their float ranges, and what recovers how much."""
        layer_info = []
        for name in culprits:
            stats = self.context.stats.get(name) if self.context.stats else None
            info: dict[str, Any] = {"layer": name, "kind": kinds.get(name, "?"), "metric_alone_16bit": alone[name]}
            if stats is not None:
                info.update({"float_min": stats.minimum, "float_max": stats.maximum, "float_p99.9_abs": stats.p999})
            layer_info.append(info)
        described = ", ".join(
            f"{i['layer']} ({i['kind']}" + (f", float range {i['float_min']:.3g}..{i['float_max']:.3g}" if "float_max" in i else "")
            + ")" for i in layer_info)
        together, everything = figures["metric_culprits_16bit"], figures["all_16bit"]
        summary = (f"16-bit activations at {described} recover {_points(self.reference.metric):.2f} → {_points(together):.2f} "
                   f"(all {len(candidates)} nodes at 16 bits: {_points(everything):.2f}); "
                   f"{len(self.experiments)} PTQ runs for {len(candidates)} nodes{self.note}")
        details = {"candidates": candidates, "culprits": layer_info, "metric_culprits_16bit": together,
                   "all_16bit": everything, "per_type": figures["per_type"], "target": figures["target"], **self.basis}
        advice = [f"fix the range of {', '.join(culprits)} in the model (rescale, clip or normalise what feeds it), or keep "
                  "it at 16 bits on a target that supports it"]
        return CulpritSearch("problem", summary, details, self.experiments, _points(together - self.reference.metric), advice)
