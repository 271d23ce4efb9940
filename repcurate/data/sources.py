"""Any training or evaluation source, by what its path is: an image folder, a CSV/JSONL list or an annotated dataset.

The one place that dispatches between :mod:`repcurate.data.scan` (folders, list files) and
:mod:`repcurate.data.annotated` (YOLO ``data.yaml``, COCO ``instances_*.json``, segmentation folder, decided by
:func:`~repcurate.data.annotated.is_annotated_source`); both modules import neither this one nor each other's
private helpers.
"""
from __future__ import annotations

from pathlib import Path

from repcurate.data.annotated import DEFAULT_EVAL_SPLIT, is_annotated_source, scan_annotated
from repcurate.data.layouts import AUTO
from repcurate.data.scan import ScanResult, is_list_file, scan_directory, scan_list


def scan(source: Path, *, layout: str = AUTO, workers: int = 4, split: str = "train",
         images_dir: Path | None = None) -> ScanResult:
    """Scan a folder, a ``.csv`` / ``.jsonl`` list file, or an annotated dataset (a YOLO ``data.yaml``, a COCO
    ``instances_*.json``, a segmentation folder: its ``split``; see :mod:`repcurate.data.annotated`)."""
    source = Path(source)
    if is_annotated_source(source):
        return scan_annotated(source, split=split, images_dir=images_dir, workers=workers)
    if is_list_file(source):
        return scan_list(source, workers=workers)
    return scan_directory(source, layout=layout, workers=workers)


def eval_source(eval_dir: str | Path, *, split: str = DEFAULT_EVAL_SPLIT, images_dir: str | Path | None = None,
                workers: int = 4) -> ScanResult:
    """The eval images of ``check`` / ``confirm`` / ``doctor``: a folder or CSV/JSONL list, or the ``split``
    (default: val) of a YOLO ``data.yaml``, the images of a COCO ``instances_*.json`` (``images_dir``: the folder
    its ``file_name`` paths are relative to) or a segmentation folder; bad annotations are skipped entries."""
    return scan(Path(eval_dir), workers=workers, split=split,
                images_dir=None if images_dir is None else Path(images_dir))
