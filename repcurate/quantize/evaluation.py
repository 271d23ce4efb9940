"""Held-out evaluation data shared by ``confirm`` and ``doctor``: tensors, labels, float outputs, metric."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repcurate.data.scan import scan
from repcurate.embed.pipeline import load_tensors
from repcurate.errors import InputError, UsageError
from repcurate.quantize.metrics import float_metrics, score

if TYPE_CHECKING:
    from repcurate.frameworks.base import Framework

log = logging.getLogger("repcurate")


@dataclass
class EvalData:
    """Eval tensors, the model's class index per image (None → fidelity), and the float model's outputs."""

    root: Path
    x: np.ndarray
    labels: np.ndarray | None
    float_logits: np.ndarray

    @property
    def metric(self) -> str:
        """``top1`` when the eval folders name the model's classes, else ``agreement`` with the float model."""
        return "top1" if self.labels is not None else "agreement"

    def float_metrics(self) -> dict[str, float]:
        """The float model's own metrics on these images."""
        return float_metrics(self.float_logits, self.labels)

    def score(self, framework: Framework, model: Any) -> dict[str, float]:
        """Metrics of ``model`` (e.g. a quantized one) on these images."""
        return score(framework.outputs(model, self.x)[0], self.float_logits, self.labels)

    def hits(self, outputs: np.ndarray) -> np.ndarray:
        """Per image: whether ``outputs`` count as correct for :attr:`metric` (true class, or the float
        model's top-1 for agreement); the metric is their mean."""
        reference = self.labels if self.labels is not None else self.float_logits.argmax(1)
        return outputs.argmax(1) == reference


def class_indices(labels: list[str | None], manifest: dict[str, Any], class_map: dict[str, int] | None,
                  outputs: int) -> np.ndarray | None:
    """The model's class index of every eval image, or None when the eval folders do not name the
    model's classes (then fidelity to the float model is measured instead)."""
    if any(lab is None for lab in labels):
        return None
    if class_map is not None:
        missing = sorted({lab for lab in labels if lab not in class_map})
        if missing:
            raise UsageError(f"--class-map has no index for eval classes {missing[:5]}")
        indices = np.array([class_map[lab] for lab in labels])
        if indices.max() >= outputs or indices.min() < 0:
            raise UsageError(f"--class-map has indices outside the model's {outputs} outputs")
        return indices
    if all(lab.isdigit() for lab in labels):  # type: ignore[union-attr]
        indices = np.array([int(lab) for lab in labels])  # type: ignore[arg-type]
        return indices if indices.max() < outputs else None
    names = sorted(c["label"] for c in manifest.get("classes", []) if c["label"] is not None)
    if set(labels) <= set(names) and len(names) == outputs:  # ImageFolder: index = position in sorted names
        return np.array([names.index(lab) for lab in labels])  # type: ignore[arg-type]
    log.info("eval folders do not name the model's %d classes (pass --class-map); measuring fidelity to "
             "the float model instead", outputs)
    return None


def load_eval(eval_dir: str | Path, *, framework: Framework, float_model: Any, preprocessor: Any,
              manifest: dict[str, Any], model_spec: str, class_map: dict[str, int] | None = None,
              max_eval: int = 2000, seed: int = 0, calibration_files: set[str] | None = None) -> EvalData:
    """Scan, sample (seeded, at most ``max_eval``), preprocess and run the float model on ``eval_dir``.
    Refuses eval images that are also calibration images (by content fingerprint)."""
    source = scan(Path(eval_dir))
    overlap = [r.path for r in source.records if r.fingerprint in (calibration_files or set())]
    if overlap:
        raise InputError(f"{source.root}: {len(overlap)} eval files are also calibration images "
                         f"(e.g. {overlap[0]}); fix: evaluate on data disjoint from the training directory")
    records = source.records
    if len(records) > max_eval:
        keep = np.sort(np.random.default_rng(seed).choice(len(records), max_eval, replace=False))
        records = [records[i] for i in keep]
    if not records:
        raise InputError(f"{source.root}: no eval images; fix: pass a folder of held-out images")
    x = load_tensors(records, source.root, preprocessor)
    try:
        outputs = framework.outputs(float_model, x)
    except Exception as exc:
        raise InputError(f"{model_spec} failed on eval tensors of shape {x.shape[1:]} "
                         f"({type(exc).__name__}: {str(exc)[:200]}); fix: pass the model's own --preprocess "
                         "(Keras models take channels-last input)") from exc
    if len(outputs) != 1:
        raise InputError(f"{model_spec} returns {len(outputs)} outputs; this needs one score vector per image "
                         "(a classifier)")
    logits = outputs[0]
    if logits.ndim != 2:
        raise InputError(f"{model_spec} returns outputs of shape {logits.shape[1:]}; this needs one score "
                         "vector per image (a classifier)")
    labels = class_indices([r.label for r in records], manifest, class_map, logits.shape[1])
    return EvalData(root=source.root, x=x, labels=labels, float_logits=logits)
