"""Tasks: what a model's outputs mean and how a quantized model is scored against a reference.

``REGISTRY`` maps a task name to its task object, in the order :func:`for_outputs` tries them (the first
that accepts the float model's outputs wins: a single ``(n, classes)`` output is classification, anything
else is scored by its fidelity to the float model). Adding a task: one module with a class satisfying
:class:`~repcurate.tasks.base.Task`, plus one ``register(...)`` line here (or from a plugin);
tests/unit/tasks/test_contract.py checks it like the others.
"""
from __future__ import annotations

import numpy as np

from repcurate.registry import lookup, registrar
from repcurate.tasks.base import Metric, Task, as_output_list
from repcurate.tasks.classification import TOP1, ClassificationTask
from repcurate.tasks.fidelity import FidelityTask

#: task name → task, in the order :func:`for_outputs` tries them.
REGISTRY: dict[str, Task] = {}
register = registrar(REGISTRY, "task", name_of=lambda task: task.name)

register(ClassificationTask())
register(FidelityTask())

#: The metric a result names before any evaluation ran (e.g. the doctor stopped at the preflight).
DEFAULT_METRIC = TOP1.name

__all__ = ["DEFAULT_METRIC", "REGISTRY", "Metric", "Task", "as_output_list", "for_outputs", "get", "metric", "register"]


def get(name: str) -> Task:
    """The task registered as ``name`` (``ValueError`` naming the closest name otherwise)."""
    return lookup(REGISTRY, name, "task")


def for_outputs(outputs: list[np.ndarray]) -> Task:
    """The first registered task that accepts a model with these float outputs."""
    for task in REGISTRY.values():
        if task.accepts(outputs):
            return task
    raise ValueError(f"no registered task accepts outputs of shapes {[o.shape for o in outputs]}")


def metric(name: str) -> Metric:
    """How the metric ``name`` (a key some registered task reports) is compared and shown; an unknown name
    (e.g. a per-output key or a report from another version) is a plain higher-is-better number."""
    for task in REGISTRY.values():
        if name in task.metrics:
            return task.metrics[name]
    return Metric(name)
