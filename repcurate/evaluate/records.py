"""The eval records of a scan and how their labels are read: class names, or each annotated image's boxes / mask."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from repcurate import tasks
from repcurate.data.annotated import AnnotatedRecord
from repcurate.data.scan import ImageRecord, ScanResult


def scored_layouts() -> tuple[str, ...]:
    """The eval layouts whose annotations some registered task scores (:attr:`Task.eval_layouts`)."""
    return tuple(layout for task in tasks.REGISTRY.values() for layout in task.eval_layouts)


def eval_records(source: ScanResult) -> tuple[list[ImageRecord], Callable[[list[ImageRecord]], list[Any]]]:
    r"""The eval records of a scan, and how to read their labels: class names for a folder or list; for a layout
    whose annotations a task scores (:func:`scored_layouts`: YOLO / COCO / segmentation folder) each record's
    :class:`~repcurate.data.annotations.AnnotatedImage`, which :meth:`Task.references` of detection /
    segmentation score against (its boxes / mask); other tasks find no class name in it (float reference)."""
    if source.layout in scored_layouts():
        return source.records, lambda records: [r.image(source.root) if isinstance(r, AnnotatedRecord) else None
                                                for r in records]
    return source.records, lambda records: [r.label for r in records]
