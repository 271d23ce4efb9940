"""``EvalData``: the eval tensors, their references, the float model's outputs and the task that scores outputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repcurate.data.scan import SkippedFile
from repcurate.tasks.base import Metric, Task, as_output_list
from repcurate.tasks.fidelity import FidelityTask

if TYPE_CHECKING:
    from repcurate.frameworks.base import Framework

#: Scores the raw outputs' fidelity to the float model beside every task's own metrics.
FIDELITY = FidelityTask()


def model_outputs(framework: Framework, model: Any, x: np.ndarray) -> list[np.ndarray]:
    """``model``'s outputs on ``x`` as a list of arrays, one per model output (single tensor, tuple, list or
    dict outputs alike: the framework's :meth:`~repcurate.frameworks.base.Framework.outputs`)."""
    return as_output_list(framework.outputs(model, x))


@dataclass
class EvalData:
    """Eval tensors, the reference of every image (None → the float model is the reference), the float
    model's outputs (a list of arrays, one per model output) and the task that scores outputs."""

    root: Path
    x: np.ndarray
    labels: np.ndarray | None
    float_outputs: list[np.ndarray]
    task: Task
    #: Eval files left out, with reasons: unreadable images and bad annotations (``label_out_of_range``, ...).
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def metric(self) -> str:
        """The headline metric the task decides by (``top1`` / ``agreement`` for a classifier)."""
        return self.task.headline(self.labels)

    @property
    def headline(self) -> Metric:
        """How the headline metric is compared and shown."""
        return self.task.metrics[self.metric]

    @property
    def paired(self) -> str:
        """The metric the per-image scores of the paired test aggregate to (the headline, or detection's F1)."""
        return self.task.paired_metric(self.labels)

    @property
    def float_logits(self) -> np.ndarray:
        """The float model's first output (a classifier's logits)."""
        return self.float_outputs[0]

    def float_metrics(self) -> dict[str, float]:
        """The float model's own metrics on these images (with the raw outputs' fidelity to themselves)."""
        return {**FIDELITY.float_metrics(self.float_outputs, None), **self.task.float_metrics(self.float_outputs, self.labels)}

    def score(self, framework: Framework, model: Any) -> dict[str, float]:
        """Metrics of ``model`` (e.g. a quantized one) on these images."""
        return self.score_outputs(model_outputs(framework, model, self.x))

    def score_outputs(self, outputs: list[np.ndarray]) -> dict[str, float]:
        """The task's metrics of ``outputs`` plus, for every task, the per-output SQNR (dB) and cosine similarity
        of the raw outputs to the float model's (the fidelity task's metrics, ``sqnr_db_<i>`` / ``cosine_<i>``)."""
        outputs = as_output_list(outputs)
        return {**FIDELITY.score(outputs, self.float_outputs, None), **self.task.score(outputs, self.float_outputs, self.labels)}

    def measure(self, outputs: list[np.ndarray]) -> tuple[float, np.ndarray]:
        """The headline value of ``outputs`` and their per-image scores for the paired test."""
        outputs = as_output_list(outputs)
        per_sample = self.per_sample(outputs)
        if self.paired == self.metric:
            return self.aggregate(per_sample), per_sample
        return self.task.score(outputs, self.float_outputs, self.labels)[self.metric], per_sample

    def per_sample(self, outputs: list[np.ndarray]) -> np.ndarray:
        """Per image: the headline metric of ``outputs`` (a classifier's hits); :meth:`aggregate` gives the metric."""
        return self.task.per_sample(as_output_list(outputs), self.float_outputs, self.labels)

    def aggregate(self, per_sample: np.ndarray) -> float:
        """The headline value of per-image scores, rounded to 6 decimals."""
        return round(self.task.aggregate(per_sample), 6)

    def significant(self, trial: Any, incumbent: Any) -> bool:
        """The task's paired test: is ``trial`` significantly better than ``incumbent`` on these images?"""
        if trial is None or incumbent is None:
            return False
        return self.task.significant(trial, incumbent)
