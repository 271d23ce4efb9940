"""``EvalSource``: which held-out images score the models, and how (the eval options of ``confirm`` / ``doctor``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.data.scan import ScanResult
from repcurate.data.sources import eval_source

#: Evaluation images used at most (seeded sample), to bound the cost of every arm.
DEFAULT_MAX_EVAL = 2000


@dataclass(frozen=True)
class EvalSource:
    """The eval images and how they are scored.

    ``path``: a folder or CSV/JSONL list, a YOLO ``data.yaml`` (its ``split``), a COCO ``instances_*.json``
    (``images_dir``: its images' folder) or a segmentation folder. ``task``: a registered task name (None:
    inferred, :mod:`repcurate.evaluate.infer`); ``postprocess``: ``file.py:fn`` or a callable turning a detector's
    outputs into boxes; ``class_map``: class name → the model's class index; ``max_eval``: the size of the seeded
    sample scored."""

    path: str | Path
    split: str = DEFAULT_EVAL_SPLIT
    images_dir: str | Path | None = None
    task: str | None = None
    postprocess: Any = None
    class_map: dict[str, int] | None = None
    max_eval: int = DEFAULT_MAX_EVAL

    def scan(self) -> ScanResult:
        """The scanned eval images (bad annotations and unreadable files are skipped entries)."""
        return eval_source(self.path, split=self.split, images_dir=self.images_dir)
