"""Held-out evaluation data shared by ``confirm`` and ``doctor``: tensors, references, float outputs, and the
task that scores a model's outputs against them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repcurate import tasks
from repcurate.data import geometry
from repcurate.data.annotated import DEFAULT_EVAL_SPLIT, AnnotatedRecord
from repcurate.data.annotations import AnnotatedImage
from repcurate.data.geometry import Frame
from repcurate.data.scan import ImageRecord, ScanResult, SkippedFile
from repcurate.data.sources import eval_source
from repcurate.embed.tensor_cache import load_tensors_cached_skipping
from repcurate.errors import InputError, UsageError, user_code_failed
from repcurate.frameworks.loading import load_postprocess, own_postprocess
from repcurate.tasks.base import Metric, Task, as_output_list
from repcurate.tasks.fidelity import FidelityTask

if TYPE_CHECKING:
    from repcurate.frameworks.base import Framework

log = logging.getLogger("repcurate")
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


#: Layouts of eval data whose labels are boxes (detection) or masks (segmentation).
BOX_LAYOUTS, MASK_LAYOUTS = ("yolo", "coco"), ("segmentation",)


def annotated_image(record: ImageRecord, root: Path) -> AnnotatedImage | None:
    """The boxes / mask of an annotated dataset's record (pixels of the original image), None for another record."""
    if not isinstance(record, AnnotatedRecord):
        return None
    return AnnotatedImage(root / record.path, record.width, record.height, record.boxes,
                          None if record.mask is None else root / record.mask)


def eval_records(source: ScanResult) -> tuple[list[ImageRecord], Callable[[list[ImageRecord]], list[Any]]]:
    r"""The eval records of a scan, and how to read their labels: class names for a folder or list; for an
    annotated dataset (YOLO / COCO / segmentation folder) each record's
    :class:`~repcurate.data.annotations.AnnotatedImage`, which :meth:`Task.references` of detection /
    segmentation score against (its boxes / mask); other tasks find no class name in it (float reference)."""
    if source.layout in BOX_LAYOUTS + MASK_LAYOUTS:
        return source.records, lambda records: [annotated_image(r, source.root) for r in records]
    return source.records, lambda records: [r.label for r in records]


def _infer_task(source: ScanResult, outputs: list[np.ndarray], *, postprocess: Any, channels_last: bool,
                where: str) -> str | None:
    """The task the eval data and outputs call for when none is named: detection with a postprocess, or on a
    detection dataset when the outputs are already decoded boxes (else :class:`UsageError`: a postprocess is
    needed); segmentation on masks when the outputs are class-score maps; None: guess from the outputs."""
    if postprocess is not None:
        return "detection"
    if source.layout in MASK_LAYOUTS and tasks.configured(tasks.get("segmentation"), channels_last=channels_last).accepts(outputs):
        return "segmentation"
    if source.layout in BOX_LAYOUTS:
        if tasks.get("detection").accepts(outputs):
            return "detection"
        raise UsageError(f"{where}: holds detection labels ({source.layout}), and the model's outputs of shapes "
                         f"{[tuple(o.shape[1:]) for o in outputs]} are not decoded boxes; fix: pass --postprocess "
                         "file.py:fn turning them into per-image (boxes, scores, classes), or --task fidelity to "
                         "compare with the float model only")
    return None


def frames_of(preprocessor: Any, input_hw: tuple[int, int] | None) -> Callable[[int, int], Frame]:
    """``frame_of(width, height)`` of ``preprocessor`` (its own or measured, see :mod:`repcurate.data.geometry`),
    remembered per image size; where it cannot be measured, the stretch onto ``input_hw`` (logged once)."""
    known: dict[tuple[int, int], Frame] = {}

    def frame_of(width: int, height: int) -> Frame:
        if (width, height) not in known:
            frame = geometry.frame_of(preprocessor, width, height)
            if frame is None:
                if input_hw is None:
                    raise InputError("the preprocessing's output is not an image-shaped array, so boxes and masks "
                                     "cannot be placed in it; fix: give the preprocessing a frame(width, height) method")
                if not known:
                    log.warning("could not measure where the preprocessing puts the image in the model input; boxes and "
                                "masks are scored as if it resized the whole image (fix: give it a frame(width, height) "
                                "method, see repcurate.data.geometry)")
                frame = Frame.stretch(width, height, input_hw[1], input_hw[0])
            known[(width, height)] = frame
        return known[(width, height)]

    return frame_of


def warn_class_names(framework: Framework, model: Any, source: ScanResult, model_spec: str) -> None:
    """Warn when the model knows its class names (an Ultralytics checkpoint) and the eval dataset names its class
    ids differently: the scores compare class ids, so the two must mean the same classes."""
    own = getattr(framework, "class_names", None)
    names = own(model) if own is not None else None
    data = list(source.class_names or [])
    if names and data and source.layout in BOX_LAYOUTS and names[:len(data)] != data:
        log.warning("%s names its classes %s, the eval data %s: boxes are scored by class id, so check that both "
                    "number the classes alike", model_spec, names[:6], data[:6])


def load_eval(eval_dir: str | Path, *, framework: Framework, float_model: Any, preprocessor: Any,
              manifest: dict[str, Any], model_spec: str, class_map: dict[str, int] | None = None,
              max_eval: int = 2000, seed: int = 0, calibration_files: set[str] | None = None,
              task: str | None = None, postprocess: Any = None, split: str = DEFAULT_EVAL_SPLIT,
              images_dir: str | Path | None = None, cache_dir: Path | None = None) -> EvalData:
    """Scan, sample (seeded, at most ``max_eval``), preprocess and run the float model on ``eval_dir``.
    Refuses eval images that are also calibration images (by content fingerprint). ``task`` names a registered
    task; by default detection when a ``postprocess`` (``file.py:fn`` or callable) is given, else the first that
    accepts the float model's outputs (one score vector per image: classification; anything else: fidelity to
    the float model).

    The eval images (:func:`eval_source`) are a folder or list, whose class labels are the references of a
    classifier (a detector / segmenter is scored against the float model), or an annotated dataset's ``split``:
    its boxes (detection: mAP against ground truth; the task is detection when a postprocess is given or the
    outputs are decoded boxes, else :class:`UsageError`) or masks (segmentation, inferred for class-score-map
    outputs: mIoU against the masks). ``task`` overrides the inference. Bad annotations and unreadable images are
    left out and listed in :attr:`EvalData.skipped`.
    With ``cache_dir`` the preprocessed eval tensors are cached there by content + preprocessing
    (:mod:`repcurate.embed.tensor_cache`): a second run decodes nothing."""
    source = eval_source(eval_dir, split=split, images_dir=images_dir)
    records, labels_of = eval_records(source)
    overlap = [r.path for r in records if r.fingerprint in (calibration_files or set())]
    if overlap:
        raise InputError(f"{source.root}: {len(overlap)} eval files are also calibration images "
                         f"(e.g. {overlap[0]}); fix: evaluate on data disjoint from the training directory")
    if len(records) > max_eval:
        keep = np.sort(np.random.default_rng(seed).choice(len(records), max_eval, replace=False))
        records = [records[i] for i in keep]
    if not records:
        why = f" ({len(source.skipped)} skipped, e.g. {source.skipped[0].path}: {source.skipped[0].reason})" if source.skipped else ""
        raise InputError(f"{source.root}: no eval images{why}; fix: pass a folder of held-out images")
    x, failures = load_tensors_cached_skipping(records, source.root, preprocessor, cache_dir=cache_dir)
    failed = {f.path for f in failures}
    records = [r for r in records if r.path not in failed]  # the labels stay aligned with the tensors
    if x is None:
        raise InputError(f"{source.root}: no eval image could be decoded and preprocessed ({failures[0].path}: "
                         f"{failures[0].reason}); fix: pass a folder of held-out images the preprocessing accepts")
    try:
        outputs = model_outputs(framework, float_model, x)
    except BaseException as exc:  # a user model raising SystemExit too
        if not user_code_failed(exc):
            raise
        raise InputError(f"{model_spec} failed on eval tensors of shape {x.shape[1:]} "
                         f"({type(exc).__name__}: {str(exc)[:200]}); fix: pass the model's own --preprocess "
                         "(Keras models take channels-last input)") from exc
    post, where = load_postprocess(postprocess)
    if post is None and task in (None, "detection"):
        post = own_postprocess(framework, float_model)  # a detector that brings its decoding (Ultralytics: NMS)
        where = f"{model_spec}'s own decoding" if post is not None else where
        warn_class_names(framework, float_model, source, model_spec)
    if task is None:
        task = _infer_task(source, outputs, postprocess=post, channels_last=framework.channels_last,
                           where=str(eval_dir))
    try:
        chosen = tasks.get(task) if task is not None else tasks.for_outputs(outputs)
    except ValueError as exc:
        raise (UsageError(f"--task: {exc}") if task is not None else InputError(f"{model_spec}: {exc}")) from None
    spatial = x.shape[1:3] if framework.channels_last else x.shape[2:4]
    chosen = tasks.configured(chosen, postprocess=post, where=where, channels_last=framework.channels_last,
                              frame_of=frames_of(preprocessor, (int(spatial[0]), int(spatial[1])) if x.ndim == 4 else None))
    if not chosen.accepts(outputs) and chosen.name == "detection" and post is None:
        raise UsageError(f"{eval_dir}: --task detection scores boxes, and the model's outputs of shapes "
                         f"{[tuple(o.shape[1:]) for o in outputs]} are not decoded boxes; fix: pass --postprocess "
                         "file.py:fn turning them into per-image (boxes, scores, classes), or --task fidelity to "
                         "compare with the float model only")
    if not chosen.accepts(outputs):
        raise InputError(f"{model_spec} returns outputs of shapes {[o.shape[1:] for o in outputs]}; the "
                         f"{chosen.name} task cannot score them")
    log.info("scoring the %s task on %d eval images", chosen.name, len(x))
    labels = chosen.references(labels_of(records), outputs, manifest=manifest, class_map=class_map)
    frame_warning = getattr(chosen, "frame_warning", None)
    warning = frame_warning(outputs, labels) if callable(frame_warning) else None
    if warning:
        log.warning("%s", warning)
    return EvalData(root=source.root, x=x, labels=labels, float_outputs=outputs, task=chosen,
                    skipped=sorted([*source.skipped, *failures], key=lambda f: f.path))
