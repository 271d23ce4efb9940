"""The ``Task`` protocol: what a model's outputs mean, how they are scored, and how scores are compared.

A task decides, for ``confirm`` and ``doctor``:

- how a dataset's labels are read and balanced (:meth:`Task.labels`, :meth:`Task.quotas`);
- the default feature layer the embedding captures (:attr:`Task.feature_layer`; the framework captures it);
- the reference an output is scored against (:meth:`Task.references`: ground truth, or ``None`` = the float model);
- the per-sample score of a model's outputs (a LIST of arrays, one per model output, batch first) against that
  reference (:meth:`Task.per_sample`), how per-sample scores aggregate (:meth:`Task.aggregate`), every metric it
  reports (:meth:`Task.score`), each metric's direction, unit and display scale (:class:`Metric`);
- the paired significance test the doctor adopts a fix by (:meth:`Task.significant`);
- the eval layouts whose annotations it scores (:attr:`Task.eval_layouts`: boxes for detection, masks for
  segmentation), from which the evaluation infers the task.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

#: The feature layer every task of today embeds with: the input of the model's last Linear / Dense layer.
LAST_LINEAR_INPUT = "input of the last Linear/Dense layer"
#: The feature layer of a model without a classifier head (detectors, segmenters): see
#: :mod:`repcurate.frameworks.torch_features`.
HEADS_INPUT = "last layer every output depends on (else the maps feeding each head, pooled and concatenated)"
#: Sign-flip permutations of the paired test of tasks whose per-sample scores are not hit/miss.
PERMUTATIONS = 4000
#: One-sided level of that test.
PERMUTATION_ALPHA = 0.05


@dataclass(frozen=True)
class Metric:
    """One reported metric: its JSON key, direction, and how it is shown.

    ``scale`` multiplies the stored value for display (a fraction stored in [0, 1] is shown ×100) and ``unit``
    names the displayed unit ("points" for such fractions, "dB", or "" for a plain number)."""

    name: str
    higher_is_better: bool = True
    scale: float = 1.0
    unit: str = ""
    description: str = ""

    def better(self, candidate: float, incumbent: float) -> bool:
        """Whether ``candidate`` is strictly better than ``incumbent``."""
        return candidate > incumbent if self.higher_is_better else candidate < incumbent

    def worst(self, values: Sequence[float]) -> float:
        """The worst of ``values`` in this metric's direction."""
        return min(values) if self.higher_is_better else max(values)

    def format(self, value: float | None, missing: str = "-") -> str:
        """The value as shown in tables: ×scale with 2 decimals for scaled metrics, else 4 significant digits."""
        if value is None:
            return missing
        return f"{value * self.scale:.2f}" if self.scale != 1.0 else f"{value:.4g}"

    @property
    def direction(self) -> str:
        """``points, higher is better`` / ``dB, higher is better`` / ``lower is better``: unit and direction."""
        way = "higher is better" if self.higher_is_better else "lower is better"
        return f"{self.unit}, {way}" if self.unit else way

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (name, unit, direction, display scale, meaning)."""
        return {"name": self.name, "unit": self.unit, "higher_is_better": self.higher_is_better, "scale": self.scale,
                "description": self.description}

    @property
    def unit_suffix(self) -> str:
        """`` points`` / `` dB`` / ``""``, for text after a number."""
        return f" {self.unit}" if self.unit else ""


@runtime_checkable
class Task(Protocol):
    """What every registered task provides (see the module docstring; checked by tests/unit/tasks/test_contract.py)."""

    name: ClassVar[str]
    #: Every metric the task reports, by JSON key.
    metrics: ClassVar[dict[str, Metric]]
    #: The default feature layer for embeddings (the framework finds and captures it).
    feature_layer: ClassVar[str]
    #: Whether the headline metric (and so the per-sample score) is better when higher.
    higher_is_better: ClassVar[bool]
    #: The eval layouts (:mod:`repcurate.data.layouts`) whose annotations this task scores: their records' labels
    #: are read as :class:`~repcurate.data.annotations.AnnotatedImage`, and on such data the task is inferred when
    #: it accepts the outputs (:mod:`repcurate.evaluate.infer`). Empty: class labels or the float model only.
    eval_layouts: ClassVar[tuple[str, ...]]

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        """Whether this task can score a model with these (float) outputs."""

    def labels(self, records: Sequence[Any]) -> list[Any]:
        """The label of every scanned record (the unit the quotas balance; a class name, or for an annotated
        dataset the record's :class:`~repcurate.data.annotations.AnnotatedImage`)."""

    def quotas(self, available: dict[str | None, int], size: int, balance: str) -> list[Any]:
        """Per-label quotas for a set of ``size`` samples."""

    def references(self, labels: list[Any], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        """Ground truth for the eval samples, or ``None`` to score against the float model's outputs."""

    def headline(self, references: np.ndarray | None) -> str:
        """The metric ``confirm`` and ``doctor`` decide by (a key of :attr:`metrics`)."""

    def paired_metric(self, references: np.ndarray | None) -> str:
        """The metric :meth:`aggregate` of the per-sample scores equals: the headline, unless the headline does
        not decompose per sample (COCO mAP pools detections over images: detection pairs per-image F1)."""

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        """The score of every sample (shape ``(n,)``) the paired test compares; :meth:`aggregate` of it is the
        value of :meth:`paired_metric`."""

    def aggregate(self, per_sample: np.ndarray) -> float:
        """The :meth:`paired_metric` value from per-sample scores."""

    def score(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
              references: np.ndarray | None) -> dict[str, float]:
        """Every metric of ``outputs`` (JSON-safe floats, rounded to 6 decimals)."""

    def float_metrics(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> dict[str, float]:
        """The float model's own metrics (its fidelity to itself is perfect by definition)."""

    def significant(self, trial: np.ndarray, incumbent: np.ndarray) -> bool:
        """Paired test on the same samples: is ``trial`` significantly better than ``incumbent`` (one-sided)?"""


def as_output_list(outputs: Any) -> list[np.ndarray]:
    """A model's outputs as a list of float64 arrays (a single array becomes a one-element list)."""
    if isinstance(outputs, np.ndarray):
        return [outputs.astype(np.float64, copy=False)]
    return [np.asarray(o, dtype=np.float64) for o in outputs]


def permutation_significant(trial: Any, incumbent: Any, *, permutations: int = PERMUTATIONS,
                            alpha: float = PERMUTATION_ALPHA, seed: int = 0) -> bool:
    """Paired sign-flip permutation test (one-sided, seeded): is the mean per-sample gain of ``trial`` over
    ``incumbent`` larger than random sign flips of the same differences give, at level ``alpha``?"""
    if trial is None or incumbent is None:
        return False
    difference = np.asarray(trial, dtype=np.float64) - np.asarray(incumbent, dtype=np.float64)
    observed = float(difference.mean()) if difference.size else 0.0
    if observed <= 0.0:
        return False
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(permutations, difference.size))
    null = (signs * difference).mean(axis=1)
    p_value = (1 + int(np.count_nonzero(null >= observed - 1e-15))) / (1 + permutations)
    return p_value < alpha


class FolderLabels:
    """Labels from class folders or a list file's label column, balanced by per-class quotas (uniform or
    proportional): today's behaviour, shared by the tasks that read labels this way."""

    def labels(self, records: Sequence[Any]) -> list[str | None]:
        """The record's label (its class folder, or the list file's label; None when unlabelled)."""
        return [r.label for r in records]

    def quotas(self, available: dict[str | None, int], size: int, balance: str) -> list[Any]:
        """Per-class quotas (:func:`repcurate.select.quotas.compute_quotas`)."""
        from repcurate.select.quotas import compute_quotas

        return compute_quotas(available, size, balance)
