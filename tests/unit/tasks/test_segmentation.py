"""The segmentation task: pooled mIoU and per-image mIoU of argmax masks, against mask PNGs or the float model."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repcurate.data.annotations import AnnotatedImage
from repcurate.tasks.segmentation import IGNORE, SegmentationTask, confusion, miou


def _scores(masks: np.ndarray, classes: int = 3) -> np.ndarray:
    """One-hot class scores (n, C, H, W) whose argmax is ``masks``."""
    return np.moveaxis(np.eye(classes)[masks], -1, 1)


def test_miou_by_hand():
    reference = np.array([[0, 0, 1, 1]])
    prediction = np.array([[0, 1, 1, 1]])  # class 0: 1/2, class 1: 2/3
    assert miou(confusion(prediction, reference, 3)) == pytest.approx((1 / 2 + 2 / 3) / 2)
    ignored = np.array([[0, 0, 1, IGNORE]])
    assert miou(confusion(np.array([[0, 0, 1, 0]]), ignored, 3)) == 1.0


def test_float_reference_and_mask_files(tmp_path):
    masks = np.zeros((2, 4, 4), dtype=np.int64)
    masks[0, :2] = 1
    masks[1, :, :2] = 2
    task = SegmentationTask()
    float_outputs = [_scores(masks)]
    assert task.float_metrics(float_outputs, None) == {"miou": 1.0, "image_miou": 1.0, "pixel_accuracy": 1.0}
    wrong = masks.copy()
    wrong[0, 0] = 0
    result = task.score([_scores(wrong)], float_outputs, None)
    assert result["image_miou"] == pytest.approx((0.5 * (8 / 12 + 4 / 8) + 1.0) / 2)
    assert result["pixel_accuracy"] == pytest.approx(28 / 32)
    # the same masks as 8×8 PNGs (twice the size: read back with nearest-neighbour resizing)
    images = []
    for i, mask in enumerate(masks):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.kron(mask, np.ones((2, 2))).astype(np.uint8)).save(path)
        images.append(AnnotatedImage(tmp_path / f"{i}.jpg", 8, 8, mask=path))
    references = task.references(images, float_outputs, manifest={}, class_map=None)
    np.testing.assert_array_equal(references, masks)
    assert task.score([_scores(wrong)], float_outputs, references) == result


def test_channels_last_layout():
    masks = np.array([[[0, 1], [2, 1]]])
    task = SegmentationTask().configure(channels_last=True)
    nhwc = np.moveaxis(_scores(masks), 1, -1)
    assert task.accepts([nhwc]) and task.score([nhwc], [nhwc], None)["miou"] == 1.0
