"""``activation_ranges``: how much eval activation mass falls outside the ranges the set produces."""
from __future__ import annotations

from typing import Any

import numpy as np

from repcurate.checks.base import Check, Measurement, Param, ReportInputs, Status
from repcurate.checks.context import EVAL_PIPELINE, CheckContext
from repcurate.frameworks.base import Visit, batches_of
from repcurate.frameworks.loading import LoadedModel


def visit_layer_outputs(loaded: LoadedModel, tensors: np.ndarray, visit: Visit, batch_size: int = 32) -> None:
    """Call ``visit(layer_name, output)`` for every layer's output of the float model, batch by batch.

    Statistics are reduced per batch: keeping every activation of a 224×224 CNN (≈ 74 MB per image
    for EfficientNet-Lite0) for a 300-image set and 256 eval images would take tens of GB.
    """
    loaded.framework.visit_layer_outputs(loaded.model, batches_of(tensors, batch_size), visit)


def layer_ranges(loaded: LoadedModel, tensors: np.ndarray, batch_size: int = 32) -> dict[str, tuple[float, float]]:
    """Every layer's output range ``(min, max)`` on ``tensors``."""
    ranges: dict[str, tuple[float, float]] = {}

    def visit(name: str, values: np.ndarray) -> None:
        if values.size:
            lo, hi = float(values.min()), float(values.max())
            old = ranges.get(name)
            ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    visit_layer_outputs(loaded, tensors, visit, batch_size)
    return ranges


def outside_counts(loaded: LoadedModel, tensors: np.ndarray, ranges: dict[str, tuple[float, float]],
                   batch_size: int = 32) -> dict[str, dict[str, float]]:
    """Per layer: how many output values on ``tensors`` fall outside ``ranges``, of how many, and their range."""
    stats: dict[str, dict[str, float]] = {}

    def visit(name: str, values: np.ndarray) -> None:
        if name not in ranges or not values.size:
            return
        lo, hi = ranges[name]
        s = stats.setdefault(name, {"outside": 0, "total": 0, "min": float("inf"), "max": float("-inf")})
        s["outside"] += int(np.count_nonzero((values < lo) | (values > hi)))
        s["total"] += int(values.size)
        s["min"], s["max"] = min(s["min"], float(values.min())), max(s["max"], float(values.max()))

    visit_layer_outputs(loaded, tensors, visit, batch_size)
    return stats


def activation_view(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The report's panel: bars of the layers whose eval activations leave the set's range most."""
    from repcurate.render import figures

    details = entry.get("details") or {}
    layers = details.get("layers") or details.get("worst") or []
    if not layers:
        return None
    return {"bars": figures.activation_bars(layers), "worst": layers[: figures.MAX_LAYER_BARS],
            "eval_images": details.get("eval_images"), "layers_total": len(layers)}


class ActivationRangesCheck(Check):
    id = "activation_ranges"
    report_panel = "activation"
    description = ("With the float model, the share of each layer's eval activations outside the range the set "
                   "produces — the clipping PTQ thresholds will impose; names the worst layers.")
    parameters = {"warn_outside": Param(0.001, minimum=0, maximum=1), "fail_outside": Param(0.01, minimum=0, maximum=1),
                  "worst": Param(5, minimum=1)}
    uses = frozenset({EVAL_PIPELINE})

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        if not ctx.model_given:
            return Measurement(None, "no --model given", skipped=True)
        loaded = ctx.loaded_model
        ranges = layer_ranges(loaded, ctx.repset.tensors)
        eval_stats = outside_counts(loaded, ctx.eval_tensors, ranges)
        layers: list[dict[str, Any]] = []
        for name, (lo, hi) in ranges.items():
            ev = eval_stats.get(name)
            if ev is None:
                continue
            outside = ev["outside"] / ev["total"]
            excess = max(ev["max"] - hi, lo - ev["min"], 0.0) / max(hi - lo, 1e-12)
            layers.append({"layer": name, "set_min": round(lo, 5), "set_max": round(hi, 5),
                           "eval_min": round(ev["min"], 5), "eval_max": round(ev["max"], 5),
                           "outside_fraction": round(outside, 6), "max_excess_of_range": round(excess, 4)})
        layers.sort(key=lambda r: (-r["outside_fraction"], -r["max_excess_of_range"], r["layer"]))
        worst = layers[: params["worst"]]
        value = worst[0]["outside_fraction"] if worst else 0.0
        names = ", ".join(f"{r['layer']} ({r['outside_fraction']:.2%})" for r in worst if r["outside_fraction"] > 0)
        message = (f"worst layers by eval activations outside the set's range: {names}" if names
                   else f"all eval activations fall inside the set's ranges ({len(layers)} layers)")
        return Measurement(value, message, {"layers": layers, "worst": worst, "eval_images": len(ctx.eval_tensors)})

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        if m.value > params["fail_outside"]:
            return Status.FAIL, f"{m.message}; PTQ would clip these — fix: rebuild the set to cover the eval data"
        if m.value > params["warn_outside"]:
            return Status.WARN, m.message
        return Status.PASS, m.message

    @classmethod
    def report_view(cls, entry: dict[str, Any], inputs: ReportInputs) -> dict[str, Any] | None:
        return activation_view(entry)
