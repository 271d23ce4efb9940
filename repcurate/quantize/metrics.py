"""Metrics of a quantized model on held-out data: top-1, or fidelity to the float model."""
from __future__ import annotations

import numpy as np


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def score(quantized: np.ndarray, float_logits: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """``top1`` (when labels are known), ``agreement`` (top-1 agreement with the float model) and
    ``kl`` (mean KL(float ‖ quantized) of the softmax outputs)."""
    log_p, log_q = _log_softmax(float_logits), _log_softmax(quantized)
    kl = float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))
    result = {"agreement": float(np.mean(quantized.argmax(1) == float_logits.argmax(1))), "kl": kl}
    if labels is not None:
        result["top1"] = float(np.mean(quantized.argmax(1) == labels))
    return {k: round(v, 6) for k, v in result.items()}


def float_metrics(float_logits: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """The float model's own metric (agreement 1, KL 0 by definition)."""
    result = {"agreement": 1.0, "kl": 0.0}
    if labels is not None:
        result["top1"] = round(float(np.mean(float_logits.argmax(1) == labels)), 6)
    return result
