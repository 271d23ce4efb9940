"""Tasks: what a model's outputs mean and how a quantized model is scored against a reference.

``REGISTRY`` maps a task name to its task object, in the order :func:`for_outputs` tries them (the first
that accepts the float model's outputs wins: a single ``(n, classes)`` output is classification, anything
else is scored by its fidelity to the float model; detection and segmentation come after fidelity, so they are
chosen by name — ``--task``, or ``--postprocess`` for detection — never guessed from output shapes). Adding a task: one module with a class satisfying
:class:`~repcurate.tasks.base.Task`, plus one ``register(...)`` line here (or from a plugin);
tests/unit/tasks/test_contract.py checks it like the others.
"""
from __future__ import annotations

from typing import Any, cast

import numpy as np

from repcurate.errors import UsageError
from repcurate.registry import lookup, registrar
from repcurate.tasks.base import Metric, Task, as_output_list
from repcurate.tasks.classification import TOP1, ClassificationTask
from repcurate.tasks.detection import DetectionTask
from repcurate.tasks.fidelity import FidelityTask
from repcurate.tasks.segmentation import SegmentationTask

#: task name → task, in the order :func:`for_outputs` tries them.
REGISTRY: dict[str, Task] = {}
register = registrar(REGISTRY, "task", name_of=lambda task: task.name)

register(ClassificationTask())
register(FidelityTask())
register(DetectionTask())
register(SegmentationTask())

#: The metric a result names before any evaluation ran (e.g. the doctor stopped at the preflight).
DEFAULT_METRIC = TOP1.name

__all__ = ["DEFAULT_METRIC", "REGISTRY", "Metric", "Task", "as_output_list", "configured", "for_outputs", "get", "metric",
           "register"]


def get(name: str) -> Task:
    """The task registered as ``name`` (``ValueError`` naming the closest name otherwise)."""
    return lookup(REGISTRY, name, "task")


def for_outputs(outputs: list[np.ndarray]) -> Task:
    """The first registered task that accepts a model with these float outputs."""
    for task in REGISTRY.values():
        if task.accepts(outputs):
            return task
    raise ValueError(f"no registered task accepts outputs of shapes {[o.shape for o in outputs]}")


def configured(task: Task, **options: Any) -> Task:
    """``task`` set up for one evaluation: a task with a ``configure(**options)`` method (detection: the user's
    postprocess and the model input size; segmentation: the framework's channel layout) returns a configured
    copy; any other task is returned as is, unless a user option it cannot take was given (``postprocess``)."""
    configure = getattr(task, "configure", None)
    if configure is not None:
        return cast(Task, configure(**options))
    if options.get("postprocess") is not None:
        raise UsageError(f"--postprocess turns detector outputs into boxes; the {task.name} task takes none; "
                         "fix: drop --postprocess or pass --task detection")
    return task


def metric(name: str) -> Metric:
    """How the metric ``name`` (a key some registered task reports) is compared and shown; an unknown name
    (e.g. a per-output key or a report from another version) is a plain higher-is-better number."""
    for task in REGISTRY.values():
        if name in task.metrics:
            return task.metrics[name]
    return Metric(name)
