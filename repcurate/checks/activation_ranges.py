"""``activation_ranges``: how much eval activation mass falls outside the ranges the set produces."""
from __future__ import annotations

from typing import Any

import numpy as np

from repcurate.checks.base import Check, Measurement, Status
from repcurate.checks.context import CheckContext


def _torch_layer_outputs(model: Any, batches: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    import torch

    outputs: dict[str, list[np.ndarray]] = {}
    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    outputs.setdefault(name, []).append(out.detach().float().cpu().numpy().ravel())
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for batch in batches:
                model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
    return outputs


def _keras_layer_outputs(model: Any, batches: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    import tensorflow as tf

    layers = [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    outputs: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        values = probe(np.ascontiguousarray(batch, dtype=np.float32), training=False)
        for layer, value in zip(layers, values if isinstance(values, list) else [values]):
            outputs.setdefault(layer.name, []).append(np.asarray(value).ravel())
    return outputs


def layer_outputs(loaded: Any, tensors: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Every layer's output values (flattened) of the float model on ``tensors``."""
    batches = [tensors[i:i + batch_size] for i in range(0, len(tensors), batch_size)]
    collect = _torch_layer_outputs if loaded.framework == "torch" else _keras_layer_outputs
    return {name: np.concatenate(parts) for name, parts in collect(loaded.model.eval() if loaded.framework == "torch" else loaded.model, batches).items()}


class ActivationRangesCheck(Check):
    id = "activation_ranges"
    description = ("With the float model, the share of each layer's eval activations outside the range the set "
                   "produces — the clipping PTQ thresholds will impose; names the worst layers.")
    defaults = {"warn_outside": 0.001, "fail_outside": 0.01, "worst": 5}

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        if not ctx.model_given:
            return Measurement(None, "no --model given", skipped=True)
        loaded = ctx.loaded_model
        set_out = layer_outputs(loaded, ctx.repset.tensors)
        eval_out = layer_outputs(loaded, ctx.eval_tensors)
        layers = []
        for name, values in set_out.items():
            lo, hi = float(values.min()), float(values.max())
            ev = eval_out.get(name)
            if ev is None or ev.size == 0:
                continue
            outside = float(np.mean((ev < lo) | (ev > hi)))
            excess = max(float(ev.max()) - hi, lo - float(ev.min()), 0.0) / max(hi - lo, 1e-12)
            layers.append({"layer": name, "set_min": round(lo, 5), "set_max": round(hi, 5),
                           "eval_min": round(float(ev.min()), 5), "eval_max": round(float(ev.max()), 5),
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
