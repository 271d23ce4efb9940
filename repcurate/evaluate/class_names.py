"""Whether a detector and its eval data number their classes alike."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from repcurate import tasks
from repcurate.data.scan import ScanResult
from repcurate.tasks.detection import DetectionTask

if TYPE_CHECKING:
    from repcurate.frameworks.base import Framework

log = logging.getLogger("repcurate")


def warn_class_names(framework: Framework, model: Any, source: ScanResult, model_spec: str) -> None:
    """Warn when the model knows its class names (an Ultralytics checkpoint) and the eval dataset, one whose boxes
    the detection task scores, names its class ids differently: the scores compare class ids, so the two must
    mean the same classes."""
    own = getattr(framework, "class_names", None)
    names = own(model) if own is not None else None
    data = list(source.class_names or [])
    boxes = source.layout in tasks.get(DetectionTask.name).eval_layouts
    if names and data and boxes and names[:len(data)] != data:
        log.warning("%s names its classes %s, the eval data %s: boxes are scored by class id, so check that both "
                    "number the classes alike", model_spec, names[:6], data[:6])
