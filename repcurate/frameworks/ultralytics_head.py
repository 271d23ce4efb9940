"""A traceable YOLOv8 / YOLO11 detector for MCT, built from an Ultralytics ``DetectionModel``, and its decoding.

:class:`TraceableYolo` runs the checkpoint's own layers (its backbone and neck modules, in the order and with the
inputs the model's layer table names) and replaces only the ``Detect`` head's inference code, which torch.fx cannot
trace (it recomputes its anchors when the input shape changes), by a fixed-size decoding written here: per level the
head's box and class convolutions, the distribution-focal-loss expectation (the head's own 1×1 ``dfl`` convolution),
anchor points and strides precomputed for the checkpoint's input size as buffers, and box corners ``anchor ∓ distance``
scaled by the stride. Outputs are two tensors, as for the IMX500: boxes ``(n, anchors, 4)`` xyxy in model-input
pixels and class scores ``(n, anchors, classes)`` after the sigmoid — keeping boxes and scores apart keeps their very
different ranges out of one quantized tensor. :func:`nms_detections` turns them into per-image detections.

The checkpoint's modules come from Ultralytics (AGPL-3.0), imported only when a user's checkpoint needs it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

#: Ultralytics' validation settings: every detection above this score enters NMS ...
NMS_SCORE = 0.001
#: ... boxes of one class overlapping more than this are suppressed ...
NMS_IOU = 0.7
#: ... and at most this many detections are kept per image.
MAX_DETECTIONS = 300
#: The most candidates per image that enter NMS (highest scores first).
MAX_NMS_CANDIDATES = 30000


def anchor_grid(strides: list[float], imgsz: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres ``(2, A)`` (x, y in grid units of each level) and the level's stride ``(1, A)`` for every anchor
    of an ``imgsz`` = (H, W) input, level by level, row-major within a level (the order of ``flatten(2)``)."""
    points, scale = [], []
    for stride in strides:
        height, width = int(imgsz[0] // stride), int(imgsz[1] // stride)
        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                                torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
        points.append(torch.stack([xs.reshape(-1), ys.reshape(-1)]))
        scale.append(torch.full((1, height * width), float(stride)))
    return torch.cat(points, dim=1), torch.cat(scale, dim=1)


def _unshare_stateless(root: nn.Module) -> None:
    """Give every use of a shared parameter-free module (Ultralytics' ``Conv`` blocks share one ``SiLU``) its own
    copy, so each call is one named layer (for MCT's graph and the per-layer statistics); outputs are unchanged."""
    import copy

    seen: set[int] = set()
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in seen and not any(True for _ in child.parameters()):
                setattr(parent, name, copy.deepcopy(child))
            seen.add(id(child))


class TraceableYolo(nn.Module):
    """An Ultralytics YOLOv8 / YOLO11 ``DetectionModel`` for a fixed input size, traceable by torch.fx.

    ``forward(x)`` → ``(boxes (n, A, 4) xyxy in input pixels, scores (n, A, classes))`` for ``x`` of shape
    ``(n, 3, H, W)`` = the ``imgsz`` it was built for. The head's input feature maps (P3/P4/P5) are what
    :attr:`head` receives; ``names`` are the class names, ``imgsz`` the input size.
    """

    anchors: torch.Tensor
    strides: torch.Tensor

    def __init__(self, detection_model: nn.Module, imgsz: tuple[int, int], names: list[str]) -> None:
        super().__init__()
        layers: Any = detection_model.model
        self.layers = layers
        self.names = list(names)
        self.imgsz = (int(imgsz[0]), int(imgsz[1]))
        self._sources: list[Any] = [layer.f for layer in layers]
        head = layers[-1]
        self.reg_max = int(head.reg_max)
        self.classes = int(head.nc)
        anchors, strides = anchor_grid([float(s) for s in head.stride], self.imgsz)
        self.anchor_count = int(anchors.shape[-1])
        self.register_buffer("anchors", anchors.unsqueeze(0), persistent=False)
        self.register_buffer("strides", strides.unsqueeze(0), persistent=False)
        _unshare_stateless(self)
        for module in self.modules():  # C2f-style blocks: the split() form of their forward traces, chunk() does not
            split = getattr(type(module), "forward_split", None)
            if split is not None:
                module.forward = split.__get__(module)

    @property
    def head(self) -> Any:
        """The checkpoint's ``Detect`` module (its box and class branches are used, not its inference code)."""
        return self.layers[-1]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps the head reads (P3, P4, P5) for input ``x``."""
        outputs: list[Any] = []
        layers: Any = self.layers
        value: Any = x
        for index, layer in enumerate(layers[:-1]):
            source = self._sources[index]
            if source != -1:
                value = outputs[source] if isinstance(source, int) else [value if j == -1 else outputs[j] for j in source]
            value = layer(value)
            outputs.append(value)
        source = self._sources[-1]
        return [value if j == -1 else outputs[j] for j in (source if isinstance(source, list) else [source])]

    def decode(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (xyxy, input pixels) and sigmoid class scores of the head's feature maps."""
        head = self.head
        anchors_total = self.anchor_count
        box = torch.cat([head.cv2[i](f).flatten(2) for i, f in enumerate(feats)], dim=2)
        cls = torch.cat([head.cv3[i](f).flatten(2) for i, f in enumerate(feats)], dim=2)
        if self.reg_max > 1:  # expectation over the distance bins: the head's own fixed 1×1 convolution
            bins = box.reshape(-1, 4, self.reg_max, anchors_total).transpose(1, 2).softmax(1)
            distance = head.dfl.conv(bins).reshape(-1, 4, anchors_total)
        else:
            distance = box
        top_left = self.anchors - distance[:, :2]
        bottom_right = self.anchors + distance[:, 2:]
        boxes = torch.cat([top_left, bottom_right], dim=1) * self.strides
        return boxes.permute(0, 2, 1), cls.sigmoid().permute(0, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.features(x))


def nms_detections(outputs: list[np.ndarray], *, score: float = NMS_SCORE, iou: float = NMS_IOU,
                   max_detections: int = MAX_DETECTIONS) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image ``(boxes (k, 4) xyxy input pixels, scores (k,), classes (k,))`` of :class:`TraceableYolo`'s outputs
    ``[boxes (n, A, 4), scores (n, A, classes)]``: each anchor's best class, scores ≥ ``score``, class-wise NMS at
    ``iou`` (torchvision), the ``max_detections`` best kept."""
    from torchvision.ops import batched_nms

    boxes_all, scores_all = np.asarray(outputs[0]), np.asarray(outputs[1])
    results = []
    for boxes_np, scores_np in zip(boxes_all, scores_all):
        best = scores_np.argmax(axis=1)
        best_score = scores_np[np.arange(len(best)), best]
        keep = np.flatnonzero(best_score >= score)
        keep = keep[np.argsort(-best_score[keep], kind="stable")[:MAX_NMS_CANDIDATES]]
        boxes = torch.from_numpy(np.ascontiguousarray(boxes_np[keep], dtype=np.float32))
        scores = torch.from_numpy(np.ascontiguousarray(best_score[keep], dtype=np.float32))
        classes = torch.from_numpy(best[keep].astype(np.int64))
        chosen = batched_nms(boxes, scores, classes, iou)[:max_detections].numpy()
        results.append((boxes.numpy()[chosen].astype(np.float64), scores.numpy()[chosen].astype(np.float64),
                        classes.numpy()[chosen]))
    return results
