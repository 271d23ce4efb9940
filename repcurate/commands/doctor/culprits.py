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
    lab = context.lab
    experiments: list[Experiment] = []
    reference, snc_off = incumbent, False
    if incumbent.settings.quantization_dict().get("shift_negative_activation_correction", True) \
            and context.negative_activations():
        settings = incumbent.settings.with_quantization(shift_negative_activation_correction=False)
        measured_reference = lab.measure(settings, "culprit search", keep_model=True)
        experiments.append(measured_reference)
        if measured_reference.metric is None:
            return CulpritSearch("skipped", "time budget", experiments=experiments)
        reference, snc_off = Incumbent(settings, measured_reference.metric, measured_reference.hits), True
        candidates = context.activation_nodes(lab.kept_model)
    measured: dict[frozenset[str], float] = {}
    hits: dict[frozenset[str], Any] = {}
    order = {name: i for i, name in enumerate(candidates)}

    def metric_of(nodes: list[str] | frozenset[str]) -> float:
        key = frozenset(nodes)
        if key not in measured:
            settings = replace(reference.settings, activation_16bit=tuple(sorted(key, key=order.__getitem__)))
            experiment = lab.measure(settings, "culprit search")
            experiments.append(experiment)
            if experiment.metric is None:
                raise _OutOfBudget
            measured[key], hits[key] = experiment.metric, experiment.hits
        return measured[key]

    points = lambda value: round(value * 100, 2)  # noqa: E731
    note = (f" (shift-negative correction off in these runs and in the reference, {points(reference.metric):.2f}: "
            "MCT rejects 16-bit activations on the nodes it corrects)") if snc_off else ""
    basis = {"shift_negative_correction_off": snc_off, "reference": reference.metric}
    try:
        everything = metric_of(candidates)
    except _OutOfBudget:
        return CulpritSearch("skipped", "time budget", experiments=experiments)
    enough = everything - reference.metric >= context.min_gain - 1e-12
    if not enough or not lab.evaluation.significant(hits[frozenset(candidates)], reference.hits):
        why = "" if not enough else ", a gain the paired test cannot tell from noise"
        return CulpritSearch(
            "no gain" if not enough else "not significant",
            f"16-bit activations on all {len(candidates)} quantized nodes give {points(everything):.2f} "
            f"(vs {points(reference.metric):.2f}{why}): activation quantization is not what costs the accuracy{note}",
            {"all_16bit": everything, "candidates": candidates, **basis}, experiments, points(everything - reference.metric),
            ["look at weight quantization instead: more weight bits or mixed precision (next step)"])
    target = (context.float_value - context.tolerance if everything >= context.float_value - context.tolerance
              else reference.metric + 0.9 * (everything - reference.metric))

    def recovered(nodes: list[str]) -> bool:
        return metric_of(nodes) >= target - 1e-12

    def search(nodes: list[str], fixed: list[str]) -> list[str]:
        if len(nodes) == 1:
            return nodes
        first, second = _halves(nodes)
        if recovered(fixed + first):
            return search(first, fixed)
        if recovered(fixed + second):
            return search(second, fixed)
        found_first = search(first, fixed + second)
        return found_first + search(second, fixed + found_first)

    by_kind: dict[str, list[str]] = {}
    for name in candidates:
        by_kind.setdefault(kinds.get(name, "?"), []).append(name)
    per_kind: dict[str, float] = {}
    try:
        start = candidates
        if 1 < len(by_kind) <= len(candidates) // 4:  # type runs pay off only when types group many nodes
            for kind, nodes in by_kind.items():
                per_kind[kind] = metric_of(nodes)
            recovering = [nodes for kind, nodes in by_kind.items() if per_kind[kind] >= target - 1e-12]
            if recovering:
                start = min(recovering, key=len)
        culprits = search(start, [])
        together = metric_of(culprits)
        alone = {name: metric_of([name]) for name in culprits} if len(culprits) > 1 else {culprits[0]: together}
    except _OutOfBudget:
        return CulpritSearch("skipped", "time budget ran out during the layer search",
                             {"all_16bit": everything, "per_type": per_kind, **basis}, experiments)
    layer_info = []
    for name in culprits:
        stats = context.stats.get(name) if context.stats else None
        info: dict[str, Any] = {"layer": name, "kind": kinds.get(name, "?"), "metric_alone_16bit": alone[name]}
        if stats is not None:
            info.update({"float_min": stats.minimum, "float_max": stats.maximum, "float_p99.9_abs": stats.p999})
        layer_info.append(info)
    described = ", ".join(
        f"{i['layer']} ({i['kind']}" + (f", float range {i['float_min']:.3g}..{i['float_max']:.3g}" if "float_max" in i else "")
        + ")" for i in layer_info)
    summary = (f"16-bit activations at {described} recover {points(reference.metric):.2f} → {points(together):.2f} "
               f"(all {len(candidates)} nodes at 16 bits: {points(everything):.2f}); "
               f"{len(experiments)} PTQ runs for {len(candidates)} nodes{note}")
    details = {"candidates": candidates, "culprits": layer_info, "metric_culprits_16bit": together,
               "all_16bit": everything, "per_type": per_kind, "target": target, **basis}
    advice = [f"fix the range of {', '.join(culprits)} in the model (rescale, clip or normalise what feeds it), or keep "
              "it at 16 bits on a target that supports it"]
    return CulpritSearch("problem", summary, details, experiments, points(together - reference.metric), advice)
