"""What the selection balances: a task's labels and quota rule, or object-level quotas for annotated data.

Records from a YOLO / COCO / segmentation dataset carry their objects (``record.boxes``); whatever the task,
they are balanced by class *instances* (:mod:`repcurate.select.object_quotas`), and every other dataset by the
task's own :meth:`~repcurate.tasks.base.Task.labels` and :meth:`~repcurate.tasks.base.Task.quotas`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE, ObjectBalance, carries_objects
from repcurate.tasks.base import Task


@dataclass
class Balance:
    """The label of every record, the quota rule over those labels, and the manifest's ``objects`` report
    (``None`` for class-labelled data)."""

    labels: list[str | None]
    quota_rule: Callable[[dict[str | None, int], int, str], list[Any]]
    report: Callable[[Sequence[int], str], dict[str, Any] | None]


def _no_report(_chosen: Sequence[int], _balance: str) -> None:
    return None


def balance_for(task: Task, records: Sequence[Any], *, names: Sequence[str] = (),
                background_share: float = DEFAULT_BACKGROUND_SHARE, seed: int = 0,
                class_totals: Sequence[int] | None = None) -> Balance:
    """Object-level balance for records that carry objects (``names``: the dataset's class names; ``class_totals``:
    the whole dataset's instances per class when the records are its candidate pool), else the task's."""
    if carries_objects(records):
        objects = ObjectBalance.from_records(records, names, background_share=background_share, seed=seed,
                                             class_totals=class_totals)
        return Balance(objects.labels, objects.quotas, objects.report)
    return Balance(task.labels(records), task.quotas, _no_report)
