"""The ``Task`` protocol: what a model's outputs mean, how they are scored, and how scores are compared.

A task decides, for ``confirm`` and ``doctor``:

- how a dataset's labels are read and balanced (:meth:`Task.labels`, :meth:`Task.quotas`);
- the default feature layer the embedding captures (:attr:`Task.feature_layer`; the framework captures it);
- the reference an output is scored against (:meth:`Task.references`: ground truth, or ``None`` = the float model);
- the per-sample score of a model's outputs (a LIST of arrays, one per model output, batch first) against that
  reference (:meth:`Task.per_sample`), how per-sample scores aggregate (:meth:`Task.aggregate`), every metric it
  reports (:meth:`Task.score`), each metric's direction, unit and display scale (:class:`Metric`);
- the paired significance test the doctor adopts a fix by (:meth:`Task.significant`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

#: The feature layer every task of today embeds with: the input of the model's last Linear / Dense layer.
LAST_LINEAR_INPUT = "input of the last Linear/Dense layer"


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

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        """Whether this task can score a model with these (float) outputs."""

    def labels(self, records: Sequence[Any]) -> list[str | None]:
        """The label of every scanned record (the unit the quotas balance)."""

    def quotas(self, available: dict[str | None, int], size: int, balance: str) -> list[Any]:
        """Per-label quotas for a set of ``size`` samples."""

    def references(self, labels: list[str | None], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        """Ground truth for the eval samples, or ``None`` to score against the float model's outputs."""

    def headline(self, references: np.ndarray | None) -> str:
        """The metric ``confirm`` and ``doctor`` decide by (a key of :attr:`metrics`)."""

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        """The headline metric of every sample (shape ``(n,)``); :meth:`aggregate` of it is the headline value."""

    def aggregate(self, per_sample: np.ndarray) -> float:
        """The headline value from per-sample scores."""

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
