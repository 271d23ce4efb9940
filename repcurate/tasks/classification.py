"""Image classification: top-1 against the eval folders' classes, or agreement with the float model's top-1,
plus the KL divergence of the softmax outputs; McNemar's test on paired per-image hits."""
from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, cast

import numpy as np

from repcurate.errors import InputError, UsageError
from repcurate.tasks.base import LAST_LINEAR_INPUT, FolderLabels, Metric

log = logging.getLogger("repcurate")

TOP1 = Metric("top1", higher_is_better=True, scale=100.0, unit="points",
              description="fraction of eval images whose top-1 class is the true class")
AGREEMENT = Metric("agreement", higher_is_better=True, scale=100.0, unit="points",
                   description="fraction of eval images whose top-1 class is the float model's")
KL = Metric("kl", higher_is_better=False, description="mean KL(float ‖ quantized) of the softmax outputs")
#: One-sided 5 % level of McNemar's test (normal approximation) for adopting a fix.
MCNEMAR_Z = 1.645


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def score(quantized: np.ndarray, float_logits: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """``top1`` (when labels are known), ``agreement`` (top-1 agreement with the float model) and
    ``kl`` (mean KL(float ‖ quantized) of the softmax outputs)."""
    log_p, log_q = _log_softmax(float_logits), _log_softmax(quantized)
    kl = float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))
    result = {AGREEMENT.name: float(np.mean(quantized.argmax(1) == float_logits.argmax(1))), KL.name: kl}
    if labels is not None:
        result[TOP1.name] = float(np.mean(quantized.argmax(1) == labels))
    return {k: round(v, 6) for k, v in result.items()}


def float_metrics(float_logits: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """The float model's own metric (agreement 1, KL 0 by definition)."""
    result = {AGREEMENT.name: 1.0, KL.name: 0.0}
    if labels is not None:
        result[TOP1.name] = round(float(np.mean(float_logits.argmax(1) == labels)), 6)
    return result


def mcnemar_significant(trial_hits: Any, incumbent_hits: Any, z: float = MCNEMAR_Z) -> bool:
    """McNemar's test on paired per-image correctness: does the trial win on significantly more images
    than it loses (normal approximation, one-sided at ``z``)?"""
    if trial_hits is None or incumbent_hits is None:
        return False
    wins = int(np.sum(trial_hits & ~incumbent_hits))
    losses = int(np.sum(~trial_hits & incumbent_hits))
    return wins > losses and (wins - losses) / math.sqrt(wins + losses) >= z


def class_indices(labels: list[str | None], manifest: dict[str, Any], class_map: dict[str, int] | None,
                  outputs: int) -> np.ndarray | None:
    """The model's class index of every eval image, or None when the eval folders do not name the
    model's classes (then fidelity to the float model is measured instead): also when a label is no class name
    (an unlabelled image, or a detection / segmentation dataset's annotated image)."""
    if any(not isinstance(lab, str) for lab in labels):
        return None
    texts = cast(list[str], labels)  # none is None (checked above)
    if class_map is not None:
        missing = sorted({lab for lab in texts if lab not in class_map})
        if missing:
            raise UsageError(f"--class-map has no index for eval classes {missing[:5]}")
        indices = np.array([class_map[lab] for lab in texts])
        if indices.max() >= outputs or indices.min() < 0:
            raise UsageError(f"--class-map has indices outside the model's {outputs} outputs")
        return indices
    if all(lab.isdigit() for lab in texts):
        indices = np.array([int(lab) for lab in texts])
        return indices if indices.max() < outputs else None
    names = sorted(c["label"] for c in manifest.get("classes", []) if c["label"] is not None)
    if set(texts) <= set(names) and len(names) == outputs:  # ImageFolder: index = position in sorted names
        return np.array([names.index(lab) for lab in texts])
    log.info("eval folders do not name the model's %d classes (pass --class-map); measuring fidelity to "
             "the float model instead", outputs)
    return None


class ClassificationTask(FolderLabels):
    """One score vector per image (a single ``(n, classes)`` output): top-1 / agreement / KL, McNemar."""

    name: ClassVar[str] = "classification"
    metrics: ClassVar[dict[str, Metric]] = {m.name: m for m in (TOP1, AGREEMENT, KL)}
    feature_layer: ClassVar[str] = LAST_LINEAR_INPUT
    higher_is_better: ClassVar[bool] = True
    eval_layouts: ClassVar[tuple[str, ...]] = ()

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        return len(outputs) == 1 and outputs[0].ndim == 2

    def references(self, labels: list[str | None], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        logits = self._logits(float_outputs)
        return class_indices(labels, manifest, class_map, logits.shape[1])

    def headline(self, references: np.ndarray | None) -> str:
        """``top1`` when the eval folders name the model's classes, else ``agreement`` with the float model."""
        return TOP1.name if references is not None else AGREEMENT.name

    def paired_metric(self, references: np.ndarray | None) -> str:
        return self.headline(references)

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        """Per image: whether the top-1 class is correct (the true class, or the float model's top-1)."""
        reference = references if references is not None else self._logits(float_outputs).argmax(1)
        return self._logits(outputs).argmax(1) == reference

    def aggregate(self, per_sample: np.ndarray) -> float:
        return float(per_sample.mean())

    def score(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
              references: np.ndarray | None) -> dict[str, float]:
        return score(self._logits(outputs), self._logits(float_outputs), references)

    def float_metrics(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> dict[str, float]:
        return float_metrics(self._logits(float_outputs), references)

    def significant(self, trial: np.ndarray, incumbent: np.ndarray) -> bool:
        return mcnemar_significant(trial, incumbent)

    @staticmethod
    def _logits(outputs: list[np.ndarray]) -> np.ndarray:
        if len(outputs) != 1 or outputs[0].ndim != 2:
            raise InputError(f"the model returns outputs of shapes {[tuple(o.shape[1:]) for o in outputs]}; "
                             "classification needs one score vector per image")
        return outputs[0]
