"""Semantic segmentation: mean IoU of the per-pixel argmax against mask PNGs (pixel value = class id, 255 =
ignore, placed in the output's frame as the preprocessing placed the image: resized with nearest-neighbour, or
letterboxed with the padding ignored; see :func:`read_masks`), or against the float model's argmax when the eval
images are unlabelled; per-image mIoU for a seeded paired permutation test.

The model returns one score map per image, ``(n, C, H, W)`` (PyTorch) or ``(n, H, W, C)`` (Keras; the task is
configured with the framework's layout). ``miou`` pools the confusion matrix over all images (the standard
dataset mIoU: classes absent from both prediction and reference are left out); ``image_miou`` averages each
image's own mIoU, which is what the paired test compares image by image.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from repcurate.data.geometry import Frame
from repcurate.data.layouts import SEGMENTATION
from repcurate.errors import InputError
from repcurate.tasks.base import HEADS_INPUT, FolderLabels, Metric, permutation_significant

MIOU = Metric("miou", higher_is_better=True, scale=100.0, unit="points",
              description="mean over classes of the IoU of the argmax masks vs the reference, pooled over images")
IMAGE_MIOU = Metric("image_miou", higher_is_better=True, scale=100.0, unit="points",
                    description="mean over images of each image's mIoU vs the reference")
PIXEL_ACCURACY = Metric("pixel_accuracy", higher_is_better=True, scale=100.0, unit="points",
                        description="fraction of (non-ignored) pixels whose argmax class is the reference's")
#: Mask value of pixels left out of every metric (VOC's border / void label).
IGNORE = 255


def confusion(prediction: np.ndarray, reference: np.ndarray, classes: int) -> np.ndarray:
    """``classes × classes`` counts of (reference, prediction) pixel pairs, ignored pixels left out."""
    valid = (reference != IGNORE) & (reference >= 0) & (reference < classes)
    pairs = reference[valid].astype(np.int64) * classes + prediction[valid].astype(np.int64)
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def miou(matrix: np.ndarray) -> float:
    """Mean IoU over the classes present in the prediction or the reference (1.0 when none is)."""
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - inter
    present = union > 0
    return float(np.mean(inter[present] / union[present])) if present.any() else 1.0


def read_masks(images: list[Any], hw: tuple[int, int], frame_of: Callable[[int, int], Frame] | None = None) -> np.ndarray:
    """Class-id masks of annotated images in the frame of an output of ``(H, W)`` = ``hw``: ``(n, H, W)`` int64.

    Without ``frame_of``, or where the preprocessing stretches the whole image onto the input, the mask is resized
    (nearest); where it letterboxes or crops (``frame_of(width, height)``, see :mod:`repcurate.data.geometry`), the mask
    is placed as the image was, and output pixels on the padding are :data:`IGNORE`."""
    import io

    from PIL import Image

    from repcurate.io.safe_read import UnsafeFile, read_bytes

    masks = []
    for image in images:
        try:
            with Image.open(io.BytesIO(read_bytes(image.mask, "mask"))) as opened:
                frame = (frame_of(image.width or opened.width, image.height or opened.height)
                         if frame_of is not None else None)
                if frame is None or (frame.kind == "resize" and frame.pad_x == frame.pad_y == 0):
                    mask = opened.resize((hw[1], hw[0]), Image.Resampling.NEAREST)
                    masks.append(np.asarray(mask, dtype=np.int64))
                else:
                    masks.append(frame.mask_to_input(np.asarray(opened, dtype=np.int64), hw, IGNORE))
        except UnsafeFile as exc:
            raise InputError(f"{image.mask}: cannot read the mask ({exc.detail}); fix: give a PNG of class ids") from None
        except OSError as exc:
            raise InputError(f"{image.mask}: cannot read the mask ({exc}); fix: give a PNG of class ids") from exc
    return np.stack(masks)


class SegmentationTask(FolderLabels):
    """Semantic segmentation: mIoU of the argmax masks; per-image mIoU for the paired test."""

    name: ClassVar[str] = "segmentation"
    metrics: ClassVar[dict[str, Metric]] = {m.name: m for m in (MIOU, IMAGE_MIOU, PIXEL_ACCURACY)}
    feature_layer: ClassVar[str] = HEADS_INPUT
    higher_is_better: ClassVar[bool] = True
    eval_layouts: ClassVar[tuple[str, ...]] = (SEGMENTATION,)

    def __init__(self, *, channels_last: bool = False, frame_of: Callable[[int, int], Frame] | None = None) -> None:
        self.channels_last = channels_last
        self.frame_of = frame_of

    def configure(self, *, channels_last: bool | None = None, frame_of: Callable[[int, int], Frame] | None = None,
                  **_other: Any) -> SegmentationTask:
        """A copy reading score maps in the framework's layout, placing masks through the preprocessing's frame."""
        return SegmentationTask(channels_last=self.channels_last if channels_last is None else channels_last,
                                frame_of=frame_of if frame_of is not None else self.frame_of)

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        return len(outputs) == 1 and outputs[0].ndim == 4 and outputs[0].shape[-1 if self.channels_last else 1] >= 2

    def _scores(self, outputs: list[np.ndarray]) -> np.ndarray:
        if not self.accepts(outputs):
            raise InputError(f"the model returns outputs of shapes {[tuple(o.shape[1:]) for o in outputs]}; "
                             "segmentation needs one class-score map per image, (C, H, W) with C >= 2")
        scores = outputs[0]
        return np.moveaxis(scores, -1, 1) if self.channels_last else scores

    def _argmax(self, outputs: list[np.ndarray]) -> np.ndarray:
        return self._scores(outputs).argmax(axis=1)

    def references(self, labels: list[Any], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        """The eval masks (resized to the output size) when every eval record is an image with a mask, else None."""
        if not labels or not all(getattr(label, "mask", None) is not None for label in labels):
            return None
        height, width = self._scores(float_outputs).shape[2:]
        return read_masks(labels, (int(height), int(width)), self.frame_of)

    def headline(self, references: np.ndarray | None) -> str:
        return MIOU.name

    def paired_metric(self, references: np.ndarray | None) -> str:
        return IMAGE_MIOU.name

    def _pairs(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
               references: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        prediction = self._argmax(outputs)
        reference = references if references is not None else self._argmax(float_outputs)
        if reference.shape != prediction.shape:
            raise InputError(f"masks of shape {reference.shape[1:]} cannot score outputs of shape {prediction.shape[1:]}")
        classes = self._scores(outputs).shape[1]
        return prediction, reference, classes

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        """Per image: its own mIoU against the reference."""
        prediction, reference, classes = self._pairs(outputs, float_outputs, references)
        return np.array([miou(confusion(p, r, classes)) for p, r in zip(prediction, reference)], dtype=np.float64)

    def aggregate(self, per_sample: np.ndarray) -> float:
        return float(np.mean(per_sample)) if len(per_sample) else 0.0

    def score(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
              references: np.ndarray | None) -> dict[str, float]:
        """``miou`` (pooled), ``image_miou`` and ``pixel_accuracy``."""
        prediction, reference, classes = self._pairs(outputs, float_outputs, references)
        matrix = confusion(prediction, reference, classes)
        per_image = [miou(confusion(p, r, classes)) for p, r in zip(prediction, reference)]
        total = matrix.sum()
        result = {MIOU.name: miou(matrix), IMAGE_MIOU.name: self.aggregate(np.array(per_image)),
                  PIXEL_ACCURACY.name: float(np.trace(matrix) / total) if total else 1.0}
        return {k: round(v, 6) for k, v in result.items()}

    def float_metrics(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> dict[str, float]:
        return self.score(float_outputs, float_outputs, references)

    def significant(self, trial: np.ndarray, incumbent: np.ndarray) -> bool:
        return permutation_significant(trial, incumbent)
