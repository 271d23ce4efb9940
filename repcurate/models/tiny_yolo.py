"""A tiny YOLO-style anchor-free detector for the composites of :mod:`repcurate.example_detection`.

    repcurate build ... --model repcurate.models.tiny_yolo:make_model --preprocess repcurate.models.tiny_yolo:preprocess

Network (:class:`TinyYolo`): a conv-BN-SiLU backbone (strides 2, 4, 8, 16, residual bottlenecks), a small
PAN neck (top-down upsample + concat, bottom-up strided conv + concat) and decoupled box and class heads at
two scales (stride 8: 16×16 cells, stride 16: 8×8 cells, for a 128×128 input). No ``nn.Linear``, no NMS
inside: ``forward`` returns the raw head outputs as a tuple, fx-traceable for MCT::

    (box_s8 (n, 4, 16, 16), cls_s8 (n, C, 16, 16), box_s16 (n, 4, 8, 8), cls_s16 (n, C, 8, 8))

``box_*`` are distances to the box's left, top, right and bottom edges from the cell centre, in strides,
before a softplus; ``cls_*`` are class logits (sigmoid: an IoU-aware score).

Post-processing contract (``--postprocess repcurate.models.tiny_yolo:postprocess``)::

    postprocess(outputs, *, score_threshold=0.001, iou_threshold=0.6, max_detections=100)
        -> list[tuple[boxes, scores, classes]]     # one tuple per image of the batch

``outputs``: the four head outputs in the order above, torch tensors or numpy arrays (any float dtype),
batch first — the model's own tuple or a list of arrays. Per image: ``boxes`` float32 (k, 4) corners
``x0, y0, x1, y1`` in pixels of the model's input (128×128; the generated images are 128×128, so these are
their pixels), ``scores`` float32 (k,) in (0, 1], ``classes`` int64 (k,) class ids (index into
:data:`repcurate.example_detection.CLASSES`), sorted by decreasing score; k ≤ ``max_detections``. Each cell
keeps its best class; class-aware NMS (``torchvision.ops.batched_nms``).

Weights: ``tiny_yolo.pt`` beside this file (a state_dict), from ``python benchmarks/train_detector.py``
(see BENCHMARKS.md for the command, time and mAP).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from repcurate.models.common import load_trained, rgb_unit_chw

WEIGHTS = Path(__file__).resolve().with_name("tiny_yolo.pt")
NUM_CLASSES = 6
IMAGE_SIZE = 128
STRIDES = (8, 16)
#: Initial class-logit bias: a prior score of 1 % per cell and class (stable start of the BCE training).
PRIOR_BIAS = -4.6


def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + SiLU, 'same' padding."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class Bottleneck(nn.Module):
    """x + conv3×3(conv1×1(x)), the residual block of YOLO's C2f, reduced to one."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = conv(channels, channels // 2, 1)
        self.expand = conv(channels // 2, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.reduce(x))


class Head(nn.Module):
    """Decoupled head of one scale: a box branch (4 distances) and a class branch (C logits)."""

    def __init__(self, channels: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.box = nn.Sequential(conv(channels, hidden, 3), nn.Conv2d(hidden, 4, 1))
        classifier = nn.Conv2d(hidden, num_classes, 1)
        with torch.no_grad():
            classifier.bias.fill_(PRIOR_BIAS)  # type: ignore[union-attr]  # Conv2d has a bias unless bias=False
        self.cls = nn.Sequential(conv(channels, hidden, 3), classifier)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.box(x), self.cls(x)


class TinyYolo(nn.Module):
    """(n, 3, 128, 128) RGB in [0, 1] → the four raw head outputs (see the module docstring)."""

    def __init__(self, num_classes: int = NUM_CLASSES, widths: Sequence[int] = (16, 24, 32, 48),
                 head_width: int = 24) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.stem = conv(3, w1, 3, 2)
        self.stage2 = nn.Sequential(conv(w1, w2, 3, 2), Bottleneck(w2))
        self.stage3 = nn.Sequential(conv(w2, w3, 3, 2), Bottleneck(w3))
        self.stage4 = nn.Sequential(conv(w3, w4, 3, 2), Bottleneck(w4), Bottleneck(w4))
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse_s8 = nn.Sequential(conv(w3 + w4, w3, 1), conv(w3, w3, 3))
        self.down = conv(w3, w3, 3, 2)
        self.fuse_s16 = nn.Sequential(conv(w3 + w4, w4, 1), conv(w4, w4, 3))
        self.head_s8 = Head(w3, head_width, num_classes)
        self.head_s16 = Head(w4, head_width, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        s8 = self.stage3(self.stage2(self.stem(x)))
        s16 = self.stage4(s8)
        p8 = self.fuse_s8(torch.cat([s8, self.upsample(s16)], dim=1))
        p16 = self.fuse_s16(torch.cat([self.down(p8), s16], dim=1))
        box8, cls8 = self.head_s8(p8)
        box16, cls16 = self.head_s16(p16)
        return box8, cls8, box16, cls16


def make_model() -> TinyYolo:
    """The trained detector in eval mode (weights from ``tiny_yolo.pt`` beside this file)."""
    return load_trained(TinyYolo(), WEIGHTS, "benchmarks/train_detector.py")


def preprocess(image: Image.Image) -> np.ndarray:
    """PIL image → float32 (3, 128, 128) RGB in [0, 1] (bilinear resize only if the size differs)."""
    return rgb_unit_chw(image, IMAGE_SIZE)


def cell_centres(height: int, width: int, stride: int) -> torch.Tensor:
    """(height·width, 2) pixel coordinates ``x, y`` of the cell centres of one scale, row-major."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).add(0.5).mul(stride)


def decode(outputs: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw head outputs → boxes (n, A, 4) ``x0, y0, x1, y1`` in input pixels and class logits (n, A, C),
    A = the cells of both scales (stride 8 first, row-major). Differentiable: the training loss uses it."""
    if len(outputs) != 2 * len(STRIDES):
        raise ValueError(f"expected {2 * len(STRIDES)} head outputs (box, cls per scale), got {len(outputs)}")
    boxes, logits = [], []
    for index, stride in enumerate(STRIDES):
        box = torch.as_tensor(outputs[2 * index]).float()
        cls = torch.as_tensor(outputs[2 * index + 1]).float()
        n, _, height, width = box.shape
        centres = cell_centres(height, width, stride).to(box.device)
        distances = F.softplus(box).permute(0, 2, 3, 1).reshape(n, -1, 4) * stride
        boxes.append(torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], dim=-1))
        logits.append(cls.permute(0, 2, 3, 1).reshape(n, height * width, -1))
    return torch.cat(boxes, dim=1), torch.cat(logits, dim=1)


def postprocess(outputs: Sequence[Any], *, score_threshold: float = 0.001, iou_threshold: float = 0.6,
                max_detections: int = 100) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Raw head outputs → per image ``(boxes (k, 4) float32 x0 y0 x1 y1 pixels, scores (k,) float32,
    classes (k,) int64)``, best first (see the module docstring)."""
    with torch.no_grad():
        boxes, logits = decode(outputs)
        return _detections(boxes, logits.sigmoid(), score_threshold, iou_threshold, max_detections)


def _detections(boxes: torch.Tensor, probabilities: torch.Tensor, score_threshold: float, iou_threshold: float,
                max_detections: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: each cell's best class above ``score_threshold``, boxes clamped to the image, class-aware NMS."""
    from torchvision.ops import batched_nms

    results = []
    scores, classes = probabilities.max(dim=-1)
    for image_boxes, image_scores, image_classes in zip(boxes, scores, classes):
        keep = image_scores > score_threshold
        kept_boxes = image_boxes[keep].clamp(0.0, float(IMAGE_SIZE))
        kept_scores, kept_classes = image_scores[keep], image_classes[keep]
        order = batched_nms(kept_boxes, kept_scores, kept_classes, iou_threshold)[:max_detections]
        results.append((kept_boxes[order].numpy().astype(np.float32), kept_scores[order].numpy().astype(np.float32),
                        kept_classes[order].numpy().astype(np.int64)))
    return results


class DecodedTinyYolo(nn.Module):
    """:class:`TinyYolo` with its box decoding inside the network, as a detector is deployed on the IMX500:
    ``(n, 3, 128, 128)`` → ``(boxes (n, A, 4) x0 y0 x1 y1 in input pixels, scores (n, A, C) after the sigmoid)``,
    A = the cells of both scales (stride 8 first, row-major). The cell centres (in cells) and strides are fixed
    buffers, so torch.fx traces the decoding as anchor arithmetic: ``centre ∓ softplus(distance)``, joined and
    scaled by the stride — the same boxes as :func:`decode`."""

    centres: torch.Tensor
    strides: torch.Tensor

    def __init__(self, model: TinyYolo) -> None:
        super().__init__()
        self.model = model
        sides = [IMAGE_SIZE // stride for stride in STRIDES]
        centres = torch.cat([cell_centres(side, side, 1).t() for side in sides], dim=1)  # (2, A), in cells
        strides = torch.cat([torch.full((1, side * side), float(stride)) for side, stride in zip(sides, STRIDES)], dim=1)
        self.register_buffer("centres", centres.unsqueeze(0), persistent=False)
        self.register_buffer("strides", strides.unsqueeze(0), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        box8, cls8, box16, cls16 = self.model(x)
        distance = F.softplus(torch.cat([box8.flatten(2), box16.flatten(2)], dim=2))
        top_left = self.centres - distance[:, :2]
        bottom_right = self.centres + distance[:, 2:]
        boxes = torch.cat([top_left, bottom_right], dim=1) * self.strides
        scores = torch.cat([cls8.flatten(2), cls16.flatten(2)], dim=2).sigmoid()
        return boxes.permute(0, 2, 1), scores.permute(0, 2, 1)


def make_decoded_model() -> DecodedTinyYolo:
    """The trained detector with its decoding inside (:class:`DecodedTinyYolo`), in eval mode."""
    return DecodedTinyYolo(make_model()).eval()


def postprocess_decoded(outputs: Sequence[Any], *, score_threshold: float = 0.001, iou_threshold: float = 0.6,
                        max_detections: int = 100) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:class:`DecodedTinyYolo`'s ``[boxes, scores]`` → per image ``(boxes, scores, classes)`` as :func:`postprocess`
    returns them for the raw outputs (each cell's best class, class-aware NMS)."""
    with torch.no_grad():
        boxes, scores = (torch.as_tensor(np.asarray(o)).float() for o in outputs[:2])
        return _detections(boxes, scores, score_threshold, iou_threshold, max_detections)
