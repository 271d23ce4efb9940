"""Object detection: COCO mAP@0.5:0.95 and mAP@0.5 (pycocotools' COCOeval) against ground-truth boxes, or against
the float model's own detections when the eval images are unlabelled; a paired bootstrap over images of the mAP
difference for the doctor's test.

**Detections.** A detector's raw outputs (boxes before decoding, per-scale maps, ...) mean nothing without the
model's decoding, so the user hands ``--postprocess file.py:fn``: ``fn(outputs)`` gets the model's outputs on a
batch (a list of numpy arrays, one per model output, batch first) and returns one ``(boxes, scores, classes)``
per image: ``boxes`` ``(k, 4)`` corners ``x0, y0, x1, y1`` in **pixels of the model input**, ``scores`` ``(k,)``,
``classes`` ``(k,)`` integer class ids. A model that decodes itself (e.g. MCT's ``pytorch_multiclass_nms``
wrapper) needs none: outputs ``boxes (n, k, 4), scores (n, k), classes (n, k)`` [``, valid (n,) or (n, 1)``] are
read as such.

**Ground truth.** Boxes of an :class:`~repcurate.data.annotations.AnnotatedImage` are in original-image pixels.
The detections are mapped back into them before scoring, through each image's
:class:`~repcurate.data.geometry.Frame` — where the preprocessing put the image in the model input (a resize, a
letterbox with its scale and padding, a centre crop; reported by the preprocessing or measured, see
:mod:`repcurate.data.geometry`) — and clipped to the image, as Ultralytics' ``scale_boxes`` does. COCO mAP is then
computed in the original frame, as Ultralytics and MCT's tutorials score.

**Unlabelled.** The float model's detections with score ≥ :data:`REFERENCE_SCORE` are the ground truth.

**Paired test.** COCO mAP ranks detections pooled over all images, so it has no per-image terms to pair; the doctor
instead resamples the images: each image's COCO matches are kept (:meth:`DetectionTask.per_sample`, an object array
that :meth:`DetectionTask.aggregate` pools back into mAP exactly), and a paired bootstrap over images of the
mAP@0.5:0.95 difference decides (:func:`~repcurate.tasks.detection_map.bootstrap_significant`). The per-image F1 of
detections with score ≥ :data:`REFERENCE_SCORE` matched at IoU ≥ 0.5 is still reported (``f1_50``).
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from repcurate.data.geometry import Frame
from repcurate.data.layouts import COCO, YOLO
from repcurate.errors import InputError, MissingDependencyError, user_code_failed
from repcurate.tasks.base import HEADS_INPUT, FolderLabels, Metric
from repcurate.tasks.detection_map import ImageMatches, MatchPool, bootstrap_significant, image_matches, reference_only

log = logging.getLogger("repcurate")

MAP = Metric("map", higher_is_better=True, scale=100.0, unit="points",
             description="COCO mAP@0.5:0.95 (pycocotools COCOeval) of the detections against the reference boxes")
MAP50 = Metric("map50", higher_is_better=True, scale=100.0, unit="points",
               description="COCO mAP@0.5 (pycocotools COCOeval) of the detections against the reference boxes")
F1 = Metric("f1_50", higher_is_better=True, scale=100.0, unit="points",
            description="mean over images of the F1 of detections with score >= 0.25 matched at IoU >= 0.5 (same class)")
#: Score threshold of the float model's detections used as ground truth, and of the per-image F1.
REFERENCE_SCORE = 0.25
#: IoU at which a detection matches a reference box in the per-image F1.
MATCH_IOU = 0.5

#: ``fn(outputs) -> [(boxes, scores, classes), ...]`` per image of the batch.
Postprocess = Callable[[list[np.ndarray]], Sequence[tuple[Any, Any, Any]]]


@dataclass(frozen=True)
class Detections:
    """One image's boxes ``(k, 4)`` xyxy (model-input pixels, or the original image's once mapped back), scores
    ``(k,)`` and integer classes ``(k,)``."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def of(cls, boxes: Any, scores: Any, classes: Any, *, where: str) -> Detections:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        c = np.asarray(classes).reshape(-1)
        if not (len(b) == len(s) == len(c)):
            raise InputError(f"{where} returned {len(b)} boxes, {len(s)} scores and {len(c)} classes for one image; "
                             "fix: return (boxes (k, 4), scores (k,), classes (k,)) per image")
        if not (np.isfinite(b).all() and np.isfinite(s).all()):
            raise InputError(f"{where} returned NaN or infinite boxes or scores; fix: return finite detections")
        return cls(b, s, np.rint(c.astype(np.float64)).astype(np.int64))

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


def decoded_outputs(outputs: list[np.ndarray]) -> bool:
    """Whether ``outputs`` are already detections: boxes ``(n, k, 4)``, scores ``(n, k)``, classes ``(n, k)``
    and optionally the number of valid rows ``(n,)`` / ``(n, 1)`` (MCT's multiclass-NMS wrapper)."""
    if len(outputs) not in (3, 4):
        return False
    boxes, scores, classes = outputs[:3]
    n = len(boxes)
    ok = boxes.ndim == 3 and boxes.shape[2] == 4 and scores.shape == boxes.shape[:2] and classes.shape == boxes.shape[:2]
    return ok and (len(outputs) == 3 or (len(outputs[3]) == n and outputs[3].size == n))


def read_decoded(outputs: list[np.ndarray]) -> list[Detections]:
    """Per-image detections of already-decoded outputs (rows past a valid count are dropped)."""
    boxes, scores, classes = outputs[:3]
    valid = outputs[3].reshape(-1).astype(int) if len(outputs) == 4 else [boxes.shape[1]] * len(boxes)
    return [Detections.of(boxes[i, :k], scores[i, :k], classes[i, :k], where="the model")
            for i, k in enumerate(valid)]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (k, 4) with every box of ``b`` (m, 4), xyxy."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def matched_f1(detections: Detections, reference: Detections, iou: float = MATCH_IOU) -> float:
    """F1 of ``detections`` against ``reference`` boxes: greedy by descending score, same class, IoU ≥ ``iou``
    (1.0 when both are empty)."""
    if len(detections.boxes) == 0 and len(reference.boxes) == 0:
        return 1.0
    overlaps = iou_matrix(detections.boxes, reference.boxes)
    taken = np.zeros(len(reference.boxes), dtype=bool)
    hits = 0
    for i in np.argsort(-detections.scores, kind="stable"):
        candidates = (~taken) & (reference.classes == detections.classes[i]) & (overlaps[i] >= iou)
        if candidates.any():
            j = int(np.argmax(np.where(candidates, overlaps[i], -1.0)))
            taken[j] = True
            hits += 1
    return 2.0 * hits / (len(detections.boxes) + len(reference.boxes))


def _coco_evaluated(detections: Sequence[Detections], reference: Sequence[Detections]) -> Any:
    """pycocotools' ``COCOeval`` of ``detections`` against ``reference`` boxes (per image, image ids ``0..n-1``) after
    ``evaluate()``, on COCO dicts built in memory (its prints silenced); None when the reference holds no box or
    there is no detection."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingDependencyError("pycocotools", extra="detection", purpose="detection mAP") from None

    def xywh(box: np.ndarray) -> list[float]:
        return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]

    annotations: list[dict[str, Any]] = []
    for image_id, ref in enumerate(reference):
        for box, cls in zip(ref.boxes, ref.classes):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                                "bbox": xywh(box), "area": max(w, 0.0) * max(h, 0.0), "iscrowd": 0})
    results = [{"image_id": image_id, "category_id": int(cls) + 1, "bbox": xywh(box), "score": float(score)}
               for image_id, det in enumerate(detections) for box, score, cls in zip(det.boxes, det.scores, det.classes)]
    if not annotations or not results:
        return None
    classes = sorted({int(c) + 1 for ref in reference for c in ref.classes} | {int(c) + 1 for d in detections for c in d.classes})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": [{"id": i} for i in range(len(reference))], "annotations": annotations,
                         "categories": [{"id": c} for c in classes]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
    return evaluation


def coco_map(detections: Sequence[Detections], reference: Sequence[Detections]) -> tuple[float, float]:
    """(mAP@0.5:0.95, mAP@0.5) of ``detections`` against ``reference`` boxes (per image, same order) with
    pycocotools' COCOeval; 0.0 when the reference holds no box."""
    if not any(len(ref.boxes) for ref in reference):
        log.warning("the reference holds no box on any eval image: mAP is 0 by definition here")
        return 0.0, 0.0
    evaluation = _coco_evaluated(detections, reference)
    if evaluation is None:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return max(float(stats[0]), 0.0), max(float(stats[1]), 0.0)


def match_images(detections: Sequence[Detections], reference: Sequence[Detections]) -> list[ImageMatches]:
    """Each image's COCO matches of ``detections`` to ``reference`` boxes (pycocotools' ``evaluate``, run once), for
    :class:`~repcurate.tasks.detection_map.MatchPool` to pool into mAP for any resample of the images."""
    evaluation = _coco_evaluated(detections, reference)
    if evaluation is None:  # no detection (or no box): only the reference boxes count
        return reference_only([ref.classes + 1 for ref in reference])
    return image_matches(evaluation, len(reference))


@dataclass(frozen=True)
class GroundTruth:
    """One image's ground-truth boxes in its original pixels, and the frame the model input shows the image in."""

    boxes: Detections
    frame: Frame
    width: int
    height: int

    def detections_here(self, found: Detections) -> Detections:
        """``found`` (model-input pixels) mapped back into this image's pixels, clipped to the image."""
        return Detections(self.frame.to_original(found.boxes, self.width, self.height), found.scores, found.classes)


#: ``frame_of(width, height)``: where the preprocessing puts a ``width × height`` image in the model input.
FrameOf = Callable[[int, int], Frame]


def ground_truth(images: Sequence[Any], frame_of: FrameOf) -> list[GroundTruth]:
    """The boxes of annotated images (original pixels) with each image's frame."""
    truth = []
    for image in images:
        boxes = np.array([[b.x0, b.y0, b.x1, b.y1] for b in image.boxes], dtype=np.float64).reshape(-1, 4)
        found = Detections(boxes, np.ones(len(boxes)), np.array([b.cls for b in image.boxes], dtype=np.int64))
        truth.append(GroundTruth(found, frame_of(image.width, image.height), image.width, image.height))
    return truth


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else 0.0


#: Below this float mAP@0.5 against ground truth, the frames of preprocessing, postprocessing and labels are suspect.
IMPLAUSIBLE_FLOAT_MAP50 = 0.25


class DetectionTask(FolderLabels):
    """Detectors: COCO mAP of the (post-processed) detections; a paired bootstrap over images of the mAP difference."""

    name: ClassVar[str] = "detection"
    metrics: ClassVar[dict[str, Metric]] = {m.name: m for m in (MAP, MAP50, F1)}
    feature_layer: ClassVar[str] = HEADS_INPUT
    higher_is_better: ClassVar[bool] = True
    eval_layouts: ClassVar[tuple[str, ...]] = (YOLO, COCO)

    def __init__(self, postprocess: Postprocess | None = None, *, frame_of: FrameOf | None = None,
                 where: str = "--postprocess") -> None:
        self.postprocess = postprocess
        self.frame_of = frame_of
        self.where = where

    def configure(self, *, postprocess: Postprocess | None = None, frame_of: FrameOf | None = None,
                  where: str | None = None, **_other: Any) -> DetectionTask:
        """A copy with the user's postprocess and ``frame_of`` (where the preprocessing puts an image of a given size
        in the model input: detections are mapped back through it)."""
        return DetectionTask(postprocess if postprocess is not None else self.postprocess,
                             frame_of=frame_of if frame_of is not None else self.frame_of, where=where or self.where)

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        return self.postprocess is not None or decoded_outputs(outputs)

    def refusal(self, outputs: list[np.ndarray]) -> str | None:
        """Why these outputs cannot be scored, with the fix (raw outputs need a postprocess); None when they can."""
        if self.accepts(outputs):
            return None
        return (f"the model's outputs of shapes {[tuple(o.shape[1:]) for o in outputs]} are not decoded boxes; fix: pass "
                "--postprocess file.py:fn turning them into per-image (boxes, scores, classes), or --task fidelity to "
                "compare with the float model only")

    def detections(self, outputs: list[np.ndarray]) -> list[Detections]:
        """Per-image detections of a model's outputs (through the postprocess, or read when already decoded)."""
        if self.postprocess is None:
            if not decoded_outputs(outputs):
                raise InputError(f"the model returns outputs of shapes {[tuple(o.shape[1:]) for o in outputs]}; "
                                 "fix: pass --postprocess file.py:fn turning them into per-image (boxes, scores, classes)")
            return read_decoded(outputs)
        try:
            per_image = list(self.postprocess([np.asarray(o) for o in outputs]))
        except BaseException as exc:  # SystemExit from the user's postprocess too
            if not user_code_failed(exc):
                raise
            raise InputError(f"{self.where} raised {type(exc).__name__}: {exc}; fix: make it return one "
                             "(boxes, scores, classes) per image") from exc
        n = len(outputs[0]) if outputs else 0
        if len(per_image) != n:
            raise InputError(f"{self.where} returned {len(per_image)} results for {n} images; fix: one "
                             "(boxes, scores, classes) per image")
        try:
            return [Detections.of(*item, where=self.where) for item in per_image]
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.where} returned {type(per_image[0]).__name__} items ({exc}); fix: return "
                             "(boxes (k, 4), scores (k,), classes (k,)) per image") from exc

    def references(self, labels: list[Any], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        """Ground-truth boxes when every eval record is an annotated image, else None (the float model's
        detections are the reference)."""
        if not labels or not all(hasattr(label, "boxes") and hasattr(label, "width") for label in labels):
            return None
        if self.frame_of is None:
            raise InputError("detection ground truth needs the preprocessing's frame; fix: evaluate through load_eval")
        truth = np.empty(len(labels), dtype=object)
        truth[:] = ground_truth(labels, self.frame_of)
        return truth

    def frame_warning(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> str | None:
        """A warning when the float model scores implausibly low against ground truth (a frame mismatch, usually)."""
        if references is None:
            return None
        map50 = self.score(float_outputs, float_outputs, references)[MAP50.name]
        if map50 >= IMPLAUSIBLE_FLOAT_MAP50:
            return None
        kinds = sorted({truth.frame.kind for truth in references})
        return (f"the float model scores only {map50 * 100:.1f} mAP@0.5 against the labels (boxes mapped back through a "
                f"{'/'.join(kinds)} frame): the preprocessing, the postprocess and the labels probably disagree on the "
                "frame; fix: make the postprocess return boxes in pixels of the model input, and a preprocessing that "
                "letterboxes report it (repcurate.data.geometry.letterbox) or check the labels' class ids")

    def headline(self, references: np.ndarray | None) -> str:
        return MAP.name

    def paired_metric(self, references: np.ndarray | None) -> str:
        return MAP.name

    def _pairs(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
               references: np.ndarray | None) -> tuple[list[Detections], list[Detections]]:
        """(detections, reference boxes) per image, in one frame: the original image's against ground truth, the
        model input's against the float model's detections."""
        found = self.detections(outputs)
        if references is None:
            return found, [d.above(REFERENCE_SCORE) for d in self.detections(float_outputs)]
        return [truth.detections_here(d) for d, truth in zip(found, references)], [truth.boxes for truth in references]

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        """Per image: its COCO matches (:class:`~repcurate.tasks.detection_map.ImageMatches`, an object array);
        :meth:`aggregate` pools them into mAP@0.5:0.95, the paired bootstrap resamples them."""
        found, reference = self._pairs(outputs, float_outputs, references)
        per_image = np.empty(len(found), dtype=object)
        per_image[:] = match_images(found, reference)
        return per_image

    def aggregate(self, per_sample: np.ndarray) -> float:
        """mAP@0.5:0.95 of the images' pooled matches (equal to pycocotools' on the same images)."""
        return MatchPool(list(per_sample)).score()[0] if len(per_sample) else 0.0

    def score(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
              references: np.ndarray | None) -> dict[str, float]:
        """``map`` (mAP@0.5:0.95), ``map50`` and ``f1_50`` against the reference."""
        found, reference = self._pairs(outputs, float_outputs, references)
        map_all, map_50 = coco_map(found, reference)
        f1 = _mean(np.array([matched_f1(d.above(REFERENCE_SCORE), r) for d, r in zip(found, reference)]))
        return {k: round(v, 6) for k, v in {MAP.name: map_all, MAP50.name: map_50, F1.name: f1}.items()}

    def float_metrics(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> dict[str, float]:
        return self.score(float_outputs, float_outputs, references)

    def significant(self, trial: np.ndarray, incumbent: np.ndarray) -> bool:
        """Paired bootstrap over the images of the mAP@0.5:0.95 gain (200 seeded resamples, one-sided 5 %)."""
        return bootstrap_significant(list(trial), list(incumbent))
