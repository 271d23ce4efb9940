"""Shared by the example-model scripts: read :mod:`repcurate.example_detection`'s output, score models on it.

- :func:`load_split` — a split's images (uint8 (N, 3, S, S)), YOLO boxes in pixels and semantic masks, read
  straight from the generator's own files (not through repcurate's readers: this is the training side);
- :func:`detector_map` — COCO mAP@0.5:0.95 and mAP@0.5 of a detector's ``postprocess``-ed outputs with
  pycocotools against ``instances_<split>.json``;
- :func:`segmenter_miou` — mean IoU over background + classes from a confusion matrix of the argmax;
- :func:`mct_quantize` — one MCT PTQ run (IMX500 TPC) on a few images.

Inputs are fed exactly as repcurate feeds them: the JPEG decoded by PIL, then the model module's
``preprocess``.
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


@dataclass
class Split:
    """One split of a generated dataset, in memory."""

    stems: list[str]
    images: torch.Tensor           # uint8 (N, 3, S, S)
    boxes: list[torch.Tensor]      # per image float32 (k, 5): class, x0, y0, x1, y1 (pixels)
    masks: torch.Tensor            # uint8 (N, S, S): 0 background, k = class k - 1
    coco_ids: list[int]


def load_split(root: Path, split: str, *, limit: int | None = None) -> Split:
    """Read ``images/<split>``, ``labels/<split>`` and ``masks/<split>`` of a generated dataset (first ``limit``)."""
    coco = json.loads((root / f"instances_{split}.json").read_text())
    entries = coco["images"][:limit]
    stems, images, boxes, masks, ids = [], [], [], [], []
    for entry in entries:
        stem = Path(entry["file_name"]).stem
        with Image.open(root / entry["file_name"]) as image:
            pixels = np.asarray(image.convert("RGB"))
        size = pixels.shape[0]
        rows = [line.split() for line in (root / "labels" / split / f"{stem}.txt").read_text().splitlines() if line.strip()]
        table = np.array([[float(v) for v in row] for row in rows], dtype=np.float32).reshape(-1, 5)
        cls, cx, cy, w, h = (table[:, i] for i in range(5))
        corners = np.stack([cls, (cx - w / 2) * size, (cy - h / 2) * size, (cx + w / 2) * size, (cy + h / 2) * size], axis=1)
        with Image.open(root / "masks" / split / f"{stem}.png") as mask:
            masks.append(np.asarray(mask))
        stems.append(stem)
        images.append(pixels.transpose(2, 0, 1))
        boxes.append(torch.from_numpy(np.rint(corners).astype(np.float32)))
        ids.append(int(entry["id"]))
    return Split(stems, torch.from_numpy(np.stack(images)), boxes, torch.from_numpy(np.stack(masks)), ids)


def model_inputs(root: Path, split: str, preprocess: Callable[[Image.Image], np.ndarray], *,
                 limit: int | None = None) -> tuple[np.ndarray, list[int]]:
    """``preprocess`` of every image file of ``split`` (PIL-decoded, as repcurate feeds them) and their COCO ids."""
    coco = json.loads((root / f"instances_{split}.json").read_text())
    arrays, ids = [], []
    for entry in coco["images"][:limit]:
        with Image.open(root / entry["file_name"]) as image:
            arrays.append(preprocess(image))
        ids.append(int(entry["id"]))
    return np.stack(arrays), ids


def run_model(model: Any, inputs: np.ndarray, *, batch_size: int = 50) -> list[list[np.ndarray]]:
    """The model's outputs per batch, each a list of numpy arrays (one per output tensor)."""
    results = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            out = model(torch.from_numpy(inputs[start:start + batch_size]))
            out = out if isinstance(out, (tuple, list)) else [out]
            results.append([o.detach().float().numpy() for o in out])
    return results


def detector_map(model: Any, root: Path, split: str = "val", *, limit: int | None = None) -> dict[str, float]:
    """COCO bbox mAP of ``model`` (a :mod:`repcurate.models.tiny_yolo` network, float or MCT-quantized) on
    ``split``: ``{"map50_95", "map50"}`` from pycocotools' COCOeval (all areas, 100 detections)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from repcurate.models import tiny_yolo

    inputs, ids = model_inputs(root, split, tiny_yolo.preprocess, limit=limit)
    detections: list[dict[str, Any]] = []
    image_ids = iter(ids)
    for outputs in run_model(model, inputs):
        for boxes, scores, classes in tiny_yolo.postprocess(outputs):
            image_id = next(image_ids)
            for (x0, y0, x1, y1), score, cls in zip(boxes.tolist(), scores.tolist(), classes.tolist()):
                detections.append({"image_id": image_id, "category_id": cls + 1, "score": score,
                                   "bbox": [x0, y0, x1 - x0, y1 - y0]})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(root / f"instances_{split}.json"))
        if not detections:
            return {"map50_95": 0.0, "map50": 0.0}
        found = truth.loadRes(detections)
        evaluator = COCOeval(truth, found, "bbox")
        evaluator.params.imgIds = ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map50_95": float(evaluator.stats[0]), "map50": float(evaluator.stats[1])}


def confusion(predicted: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) pixel counts: rows the true class, columns the predicted one."""
    return np.bincount(truth.reshape(-1).astype(np.int64) * classes + predicted.reshape(-1).astype(np.int64),
                       minlength=classes * classes).reshape(classes, classes)


def miou_of(matrix: np.ndarray) -> tuple[float, list[float]]:
    """Mean IoU over the classes present in the truth or the predictions, and the per-class IoU (nan: absent)."""
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return float(np.nanmean(ious)), [float(v) for v in ious]


def segmenter_miou(model: Any, root: Path, split: str = "val", *, limit: int | None = None) -> dict[str, Any]:
    """mIoU of ``model`` (a :mod:`repcurate.models.unet_lite` network) on ``split`` over background + classes."""
    from repcurate.models import unet_lite

    inputs, _ = model_inputs(root, split, unet_lite.preprocess, limit=limit)
    truth = load_split(root, split, limit=limit).masks.numpy()
    matrix = np.zeros((unet_lite.NUM_CLASSES, unet_lite.NUM_CLASSES), dtype=np.int64)
    start = 0
    for outputs in run_model(model, inputs):
        predicted = outputs[0].argmax(axis=1)
        matrix += confusion(predicted, truth[start:start + len(predicted)], unet_lite.NUM_CLASSES)
        start += len(predicted)
    miou, per_class = miou_of(matrix)
    return {"miou": miou, "iou_per_class": per_class}


def mct_quantize(model: Any, calibration: np.ndarray, *, weights_bits: int = 8, batch_size: int = 8) -> Any:
    """One MCT 2.6 PTQ run of a PyTorch ``model`` (IMX500 TPC v1.0, default settings; ``weights_bits`` for
    Conv2d kernels) calibrated on ``calibration`` (preprocessed inputs); returns the quantized module."""
    import model_compression_toolkit as mct

    def representative_data() -> Any:
        for start in range(0, len(calibration), batch_size):
            yield [calibration[start:start + batch_size]]

    bit_widths = mct.core.BitWidthConfig()
    if weights_bits != 8:
        bit_widths.set_manual_weights_bit_width([mct.core.common.network_editors.NodeTypeFilter(torch.nn.Conv2d)],
                                                weights_bits, "weight")
    core = mct.core.CoreConfig(bit_width_config=bit_widths)
    tpc = mct.get_target_platform_capabilities(tpc_version="1.0", device_type="imx500")
    with contextlib.redirect_stdout(io.StringIO()):
        quantized, _ = mct.ptq.pytorch_post_training_quantization(model, representative_data, core_config=core,
                                                                   target_platform_capabilities=tpc)
    return quantized.eval()


def seconds(started: float) -> float:
    """Seconds since ``started`` (time.perf_counter), rounded to 0.1."""
    import time

    return round(time.perf_counter() - started, 1)


def batches(count: int, batch_size: int, generator: torch.Generator) -> Sequence[torch.Tensor]:
    """A seeded shuffle of ``range(count)`` cut into batches (the last may be smaller)."""
    order = torch.randperm(count, generator=generator)
    return [order[start:start + batch_size] for start in range(0, count, batch_size)]
