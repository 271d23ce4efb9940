"""``activation_ranges``: how much eval activation mass falls outside the ranges the set produces."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from repcurate.checks.base import Check, Measurement, Param, ReportInputs, Status
from repcurate.checks.context import EVAL_PIPELINE, CheckContext


Visit = Callable[[str, np.ndarray], None]


def _torch_visit(model: Any, batches: Iterable[np.ndarray], visit: Visit) -> None:
    import torch

    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    visit(name, out.detach().float().cpu().numpy())
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for batch in batches:
                model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()


def _keras_visit(model: Any, batches: Iterable[np.ndarray], visit: Visit) -> None:
    import tensorflow as tf

    layers = [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    for batch in batches:
        values = probe(np.ascontiguousarray(batch, dtype=np.float32), training=False)
        for layer, value in zip(layers, values if isinstance(values, list) else [values]):
            visit(layer.name, np.asarray(value))


def visit_layer_outputs(loaded: Any, tensors: np.ndarray, visit: Visit, batch_size: int = 32) -> None:
    """Call ``visit(layer_name, output)`` for every layer's output of the float model, batch by batch.

    Statistics are reduced per batch: keeping every activation of a 224×224 CNN (≈ 74 MB per image
    for EfficientNet-Lite0) for a 300-image set and 256 eval images would take tens of GB.
    """
    batches = (tensors[i:i + batch_size] for i in range(0, len(tensors), batch_size))
    if loaded.framework == "torch":
        _torch_visit(loaded.model.eval(), batches, visit)
    else:
        _keras_visit(loaded.model, batches, visit)


def layer_ranges(loaded: Any, tensors: np.ndarray, batch_size: int = 32) -> dict[str, tuple[float, float]]:
    """Every layer's output range ``(min, max)`` on ``tensors``."""
    ranges: dict[str, tuple[float, float]] = {}

    def visit(name: str, values: np.ndarray) -> None:
        if values.size:
            lo, hi = float(values.min()), float(values.max())
            old = ranges.get(name)
            ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    visit_layer_outputs(loaded, tensors, visit, batch_size)
    return ranges


def outside_counts(loaded: Any, tensors: np.ndarray, ranges: dict[str, tuple[float, float]],
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
    from repcurate.report import figures

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
        layers = []
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
        return Measurement(value, message, {"layers": layers, "worst": worst, "eval_images": int(len(ctx.eval_tensors))})

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        if m.value > params["fail_outside"]:
            return Status.FAIL, f"{m.message}; PTQ would clip these — fix: rebuild the set to cover the eval data"
        if m.value > params["warn_outside"]:
            return Status.WARN, m.message
        return Status.PASS, m.message

    @classmethod
    def report_view(cls, entry: dict[str, Any], inputs: ReportInputs) -> dict[str, Any] | None:
        return activation_view(entry)
