"""Which task scores the eval outputs: the one named, the one whose eval layout the data has, or a guess from the
outputs; set up for this evaluation (postprocess, channel layout, frame)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from repcurate import tasks
from repcurate.data.geometry import Frame
from repcurate.data.scan import ScanResult
from repcurate.errors import InputError, UsageError
from repcurate.evaluate.class_names import warn_class_names
from repcurate.evaluate.source import EvalSource
from repcurate.frameworks.loading import load_postprocess, own_postprocess
from repcurate.tasks.base import Task
from repcurate.tasks.detection import DetectionTask

if TYPE_CHECKING:
    from repcurate.frameworks.base import Framework

#: The task a postprocess (the user's or the model's own decoding) is for.
DETECTION = DetectionTask.name


def refusal(task: Task, outputs: list[np.ndarray]) -> str | None:
    """Why ``task`` cannot score ``outputs`` and the fix, from its optional ``refusal(outputs)`` (detection: raw
    outputs need a postprocess); None when it can, or when the task gives no reason (another task may)."""
    why = getattr(task, "refusal", None)
    return why(outputs) if callable(why) else None


def infer_task(source: ScanResult, outputs: list[np.ndarray], *, postprocess: Any, channels_last: bool,
               where: str) -> str | None:
    """The task the eval data and outputs call for when none is named: detection with a postprocess; else the
    registered task whose :attr:`~repcurate.tasks.base.Task.eval_layouts` hold the data's layout when it accepts
    the outputs (detection on decoded boxes, segmentation on class-score maps); a task that refuses them with a
    reason (detection: a postprocess is needed) is a :class:`UsageError`. None: guess from the outputs."""
    if postprocess is not None:
        return DETECTION
    for task in tasks.REGISTRY.values():
        if source.layout not in task.eval_layouts:
            continue
        ready = tasks.configured(task, channels_last=channels_last)
        if ready.accepts(outputs):
            return task.name
        why = refusal(ready, outputs)
        if why:
            raise UsageError(f"{where}: holds {task.name} labels ({source.layout}), and {why}")
    return None


def _postprocess(source: EvalSource, scanned: ScanResult, *, framework: Framework, float_model: Any,
                 model_spec: str) -> tuple[Any, str]:
    """The postprocess (the user's, else a detector's own decoding: Ultralytics' NMS) and how errors name it."""
    post, where = load_postprocess(source.postprocess)
    if post is None and source.task in (None, DETECTION):
        post = own_postprocess(framework, float_model)
        where = f"{model_spec}'s own decoding" if post is not None else where
        warn_class_names(framework, float_model, scanned, model_spec)
    return post, where


def choose_task(source: EvalSource, scanned: ScanResult, outputs: list[np.ndarray], *, framework: Framework,
                float_model: Any, model_spec: str, frame_of: Callable[[int, int], Frame]) -> Task:
    """The task that scores ``outputs`` (``source.task``, else :func:`infer_task`, else the first registered task
    accepting them), configured with the postprocess, the framework's channel layout and ``frame_of``."""
    post, where = _postprocess(source, scanned, framework=framework, float_model=float_model, model_spec=model_spec)
    name = source.task
    if name is None:
        name = infer_task(scanned, outputs, postprocess=post, channels_last=framework.channels_last,
                          where=str(source.path))
    try:
        chosen = tasks.get(name) if name is not None else tasks.for_outputs(outputs)
    except ValueError as exc:
        raise (UsageError(f"--task: {exc}") if name is not None else InputError(f"{model_spec}: {exc}")) from None
    chosen = tasks.configured(chosen, postprocess=post, where=where, channels_last=framework.channels_last,
                              frame_of=frame_of)
    if not chosen.accepts(outputs):
        why = refusal(chosen, outputs)
        if why:
            raise UsageError(f"{source.path}: --task {chosen.name}: {why}")
        raise InputError(f"{model_spec} returns outputs of shapes {[o.shape[1:] for o in outputs]}; the "
                         f"{chosen.name} task cannot score them")
    return chosen
