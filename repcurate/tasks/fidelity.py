"""Output fidelity to the float model, for any model (one output or several: boxes and classes, masks, ...):
per-output SQNR in dB and cosine similarity, both higher-is-better; a Wilcoxon signed-rank test on paired
per-sample cosine similarities decides whether a fix is significant."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from repcurate.tasks.base import LAST_LINEAR_INPUT, FolderLabels, Metric

COSINE = Metric("cosine", higher_is_better=True, scale=100.0, unit="points",
                description="cosine similarity of each sample's outputs to the float model's, mean over samples and outputs")
SQNR = Metric("sqnr_db", higher_is_better=True, unit="dB",
              description="signal-to-quantization-noise ratio of the outputs vs the float model's, mean over outputs")
#: SQNR reported when the outputs equal the float model's exactly (no noise: the ratio is infinite).
MAX_SQNR_DB = 200.0
#: One-sided level of the Wilcoxon signed-rank test for adopting a fix.
WILCOXON_ALPHA = 0.05


def _flat(output: np.ndarray) -> np.ndarray:
    return np.asarray(output, dtype=np.float64).reshape(len(output), -1)


def cosine_per_sample(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity of every sample's output to its reference (1 when both are zero, 0 when one is)."""
    a, b = _flat(output), _flat(reference)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, np.clip(cosine, -1.0, 1.0))


def sqnr_db(output: np.ndarray, reference: np.ndarray) -> float:
    """10·log10(signal energy / noise energy) over all samples (``MAX_SQNR_DB`` when there is no noise)."""
    signal = float(np.sum(_flat(reference) ** 2))
    noise = float(np.sum((_flat(output) - _flat(reference)) ** 2))
    if noise <= 0.0:
        return MAX_SQNR_DB
    if signal <= 0.0:
        return -MAX_SQNR_DB
    return float(np.clip(10.0 * np.log10(signal / noise), -MAX_SQNR_DB, MAX_SQNR_DB))


class FidelityTask(FolderLabels):
    """Any model: how close the quantized model's outputs stay to the float model's (no ground truth needed)."""

    name: ClassVar[str] = "fidelity"
    metrics: ClassVar[dict[str, Metric]] = {m.name: m for m in (COSINE, SQNR)}
    feature_layer: ClassVar[str] = LAST_LINEAR_INPUT
    higher_is_better: ClassVar[bool] = True
    eval_layouts: ClassVar[tuple[str, ...]] = ()

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        return len(outputs) > 0 and all(o.ndim >= 1 and len(o) == len(outputs[0]) for o in outputs)

    def references(self, labels: list[str | None], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        return None  # the float model's outputs are the reference

    def headline(self, references: np.ndarray | None) -> str:
        return COSINE.name

    def paired_metric(self, references: np.ndarray | None) -> str:
        return self.headline(references)

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        """Per sample: its cosine similarity to the float model, averaged over the model's outputs."""
        self._same_structure(outputs, float_outputs)
        return np.mean([cosine_per_sample(o, f) for o, f in zip(outputs, float_outputs)], axis=0)

    def aggregate(self, per_sample: np.ndarray) -> float:
        return float(np.mean(per_sample))

    def score(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
              references: np.ndarray | None) -> dict[str, float]:
        """``cosine`` and ``sqnr_db`` (means over outputs) and ``cosine_<i>`` / ``sqnr_db_<i>`` per output ``i``."""
        self._same_structure(outputs, float_outputs)
        result: dict[str, float] = {}
        for i, (o, f) in enumerate(zip(outputs, float_outputs)):
            result[f"{COSINE.name}_{i}"] = float(np.mean(cosine_per_sample(o, f)))
            result[f"{SQNR.name}_{i}"] = sqnr_db(o, f)
        result[COSINE.name] = float(np.mean([result[f"{COSINE.name}_{i}"] for i in range(len(outputs))]))
        result[SQNR.name] = float(np.mean([result[f"{SQNR.name}_{i}"] for i in range(len(outputs))]))
        return {k: round(v, 6) for k, v in result.items()}

    def float_metrics(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> dict[str, float]:
        return self.score(float_outputs, float_outputs, references)

    def significant(self, trial: np.ndarray, incumbent: np.ndarray) -> bool:
        """One-sided Wilcoxon signed-rank test on the paired per-sample scores (ties dropped), p < 0.05."""
        if trial is None or incumbent is None:
            return False
        from scipy.stats import wilcoxon

        difference = np.asarray(trial, dtype=np.float64) - np.asarray(incumbent, dtype=np.float64)
        if np.count_nonzero(difference) == 0 or difference.sum() <= 0:
            return False
        try:
            p_value = wilcoxon(difference, zero_method="wilcox", alternative="greater").pvalue
        except ValueError:  # too few non-zero differences
            return False
        return bool(p_value < WILCOXON_ALPHA)

    @staticmethod
    def _same_structure(outputs: list[np.ndarray], float_outputs: list[np.ndarray]) -> None:
        shapes, float_shapes = [o.shape for o in outputs], [f.shape for f in float_outputs]
        if shapes != float_shapes:
            raise ValueError(f"outputs of shapes {shapes} cannot be compared with the float model's {float_shapes}")
