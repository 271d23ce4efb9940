"""Ultralytics YOLO detectors as a model of their own: ``--model best.pt`` with no other model flag.

A checkpoint file (``.pt``, as Ultralytics' trainer and ``YOLO.save`` write it), or an Ultralytics
``DetectionModel`` / ``YOLO`` object (e.g. built from ``yolov8n.yaml``), becomes a
:class:`~repcurate.frameworks.ultralytics_head.TraceableYolo` at the checkpoint's ``imgsz``, and brings:

- its **preprocessing**: :func:`repcurate.data.geometry.letterbox` at that size (RGB, grey padding, ``/ 255``,
  CHW), recorded in the set as ``repcurate.data.geometry:letterbox_<H>`` (or ``_<H>x<W>``), so its frame is known;
- its **postprocess**: :func:`~repcurate.frameworks.ultralytics_head.nms_detections` (each anchor's best class,
  class-wise NMS as Ultralytics validates), boxes in model-input pixels;
- its **class names** (the checkpoint's ``names``);
- its **feature layer**: the inputs of the ``Detect`` head (P3/P4/P5), caught by a forward pre-hook, each
  global-average-pooled and concatenated (no torch.fx needed);
- a model MCT traces (the head's inference code replaced by a fixed-size decoding; outputs equal the checkpoint's).

YOLOv8 and YOLO11 *detect* checkpoints are supported; segmentation, pose, oriented-box and classification
checkpoints, and NMS-free end-to-end heads (YOLOv10, YOLO26), are refused with exit 2 and the reason.

Loading a ``.pt`` file runs Python's pickle: it is done only for a file named on the command line (``--model``),
never for one a set's manifest names (see :mod:`repcurate.trust`). Ultralytics (AGPL-3.0) is imported only here,
when such a model is used, with ``YOLO_OFFLINE=1`` so it never reaches the network.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import InputError, MissingDependencyError, UsageError
from repcurate.frameworks.base import pool_features
from repcurate.frameworks.torch import TorchCapture, TorchFramework, torch_model_fingerprint

log = logging.getLogger("repcurate")

#: Checkpoint files this framework loads (pickled Ultralytics checkpoints).
CHECKPOINT_SUFFIXES = (".pt",)
#: Ultralytics' default input size, used when a model records none.
DEFAULT_IMGSZ = 640
#: The Ultralytics classes whose objects are taken as models (checked by name: no import needed).
_MODEL_CLASSES = frozenset({"DetectionModel", "SegmentationModel", "PoseModel", "OBBModel", "ClassificationModel",
                            "WorldModel", "YOLOEModel", "RTDETRDetectionModel", "YOLO", "Model"})
#: The name a manifest records for the feature layer (the head's inputs).
HEAD_INPUTS = "Detect:input"


def import_ultralytics() -> Any:
    """The ``ultralytics`` package, imported offline (``YOLO_OFFLINE=1``, unless the caller set it), or
    :class:`MissingDependencyError` (exit 4) naming the extra."""
    from PIL import Image

    os.environ.setdefault("YOLO_OFFLINE", "1")
    pillow_open = Image.open
    try:
        with contextlib.redirect_stdout(sys.stderr):  # its first import announces its settings file on stdout
            import ultralytics
            import ultralytics.utils.patches
            from ultralytics.utils import LOGGER
    except ImportError:
        raise MissingDependencyError("ultralytics", extra="ultralytics",
                                     purpose="Ultralytics YOLO checkpoints (--model best.pt)") from None
    finally:
        # Ultralytics replaces PIL.Image.open on import with one that, on any unidentifiable file, tries to pip-install
        # a HEIF plugin; repcurate's decoders must see Pillow's own error (a corrupt image is skipped, not fatal).
        Image.open = pillow_open
    for handler in LOGGER.handlers:  # its log lines go to stderr: stdout carries only repcurate's results
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
            handler.setStream(sys.stderr)
    return ultralytics


def is_ultralytics_object(model: Any) -> bool:
    """Whether ``model`` is an Ultralytics model object (``DetectionModel``, ``YOLO``, ...), without importing it."""
    kind = type(model)
    return kind.__module__.startswith("ultralytics.") and kind.__name__ in _MODEL_CLASSES


def _imgsz(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)) and value:
        height, width = (int(value[0]), int(value[-1]))
    else:
        height = width = int(value or DEFAULT_IMGSZ)
    return height, width


def _names(raw: Any, classes: int) -> list[str]:
    if isinstance(raw, dict):
        return [str(raw.get(i, i)) for i in range(classes)]
    if isinstance(raw, (list, tuple)) and len(raw) == classes:
        return [str(n) for n in raw]
    return [str(i) for i in range(classes)]


def traceable(model: Any, where: str, imgsz: Any = None) -> Any:
    """The :class:`~repcurate.frameworks.ultralytics_head.TraceableYolo` of an Ultralytics ``DetectionModel`` or
    ``YOLO`` object (``imgsz``: default the model's recorded ``args['imgsz']``, else 640); :class:`UsageError`
    for a head it does not take (segmentation, pose, OBB, classification, end-to-end)."""
    import copy

    import_ultralytics()
    inner = getattr(model, "model", None) if type(model).__name__ in ("YOLO", "Model") else model
    if inner is None or not hasattr(inner, "model"):
        raise UsageError(f"{where}: the Ultralytics object holds no PyTorch model; fix: load a .pt checkpoint or a "
                         "model built from a .yaml file")
    head = inner.model[-1]
    head_name = type(head).__name__
    task = getattr(inner, "task", None) or {"Segment": "segment", "Pose": "pose", "OBB": "obb",
                                            "Classify": "classify"}.get(head_name, "detect")
    if head_name != "Detect" or task != "detect":
        raise UsageError(f"{where}: an Ultralytics {task} model ({head_name} head); repcurate takes YOLOv8 / YOLO11 "
                         "detect models only (segmentation, pose, oriented boxes and classification are not scored "
                         "here); fix: pass a detect checkpoint, or the model's factory with --preprocess/--postprocess")
    if getattr(head, "one2one_cv2", None) is not None or getattr(head, "end2end", False):
        raise UsageError(f"{where}: an NMS-free end-to-end detect head (YOLOv10 / YOLO26); repcurate takes YOLOv8 / "
                         "YOLO11 detect models; fix: pass a YOLOv8 or YOLO11 checkpoint")
    from repcurate.frameworks.ultralytics_head import TraceableYolo

    args = getattr(inner, "args", None)
    recorded = args.get("imgsz") if isinstance(args, dict) else getattr(args, "imgsz", None)
    size = _imgsz(imgsz if imgsz is not None else recorded)
    strides = [int(s) for s in head.stride]
    if any(side % max(strides) for side in size):
        raise UsageError(f"{where}: input size {size[0]}×{size[1]} is not a multiple of the model's largest stride "
                         f"{max(strides)}; fix: use a checkpoint trained at a multiple of {max(strides)}")
    copied = copy.deepcopy(inner).float().eval()
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return TraceableYolo(copied, size, _names(getattr(inner, "names", None), int(head.nc))).eval()


def load_checkpoint(path: str) -> Any:
    """The :class:`TraceableYolo` of an Ultralytics checkpoint file (a pickle: the user's own file, named on the
    command line); :class:`InputError` for a missing or unreadable file, or one that is not such a checkpoint."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: file not found; fix: give the path of an Ultralytics checkpoint (best.pt)")
    import_ultralytics()
    from ultralytics.nn.tasks import torch_safe_load

    try:
        checkpoint, _ = torch_safe_load(str(file.resolve()))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: not a checkpoint this can read
        raise InputError(f"{path}: cannot be read as an Ultralytics checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); fix: pass the .pt file Ultralytics "
                         "wrote (runs/detect/train/weights/best.pt)") from None
    model = (checkpoint.get("ema") or checkpoint.get("model")) if isinstance(checkpoint, dict) else None
    if model is None or not is_ultralytics_object(model):
        raise InputError(f"{path}: holds no Ultralytics model (a state_dict or another framework's checkpoint?); "
                         "fix: pass the .pt file Ultralytics wrote, or a plain PyTorch model as file.py:factory")
    train_args = checkpoint.get("train_args") or {}
    return traceable(model, path, imgsz=train_args.get("imgsz") if isinstance(train_args, dict) else None)


class HeadInputCapture:
    """Features of a :class:`TraceableYolo`: the maps its head reads (P3/P4/P5), each pooled, concatenated; the
    forward pass stops at the head."""

    def __init__(self, model: Any, *, spec: str, device: str = "cpu") -> None:
        import torch

        from repcurate.frameworks.device import concrete_device

        self.device = torch.device(concrete_device(device))
        self.model = model.eval().to(self.device)
        self.model_spec = spec
        self.layer = HEAD_INPUTS
        self.fingerprint = torch_model_fingerprint(model, "in:" + HEAD_INPUTS)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        expected = (3, *self.model.imgsz)
        if tuple(x.shape[1:]) != expected:
            raise InputError(f"{self.model_spec} takes inputs of shape {expected}, the preprocessing gives "
                             f"{tuple(x.shape[1:])}; fix: drop --preprocess (the checkpoint brings its letterbox)")
        with torch.inference_mode():
            feats = self.model.features(x)
        pooled = [pool_features(f.detach().float().cpu().numpy(), channels_last=False) for f in feats]
        return np.ascontiguousarray(np.concatenate(pooled, axis=1))


#: What to do when a model built from Ultralytics modules does not trace.
def is_traceable_yolo(model: Any) -> bool:
    """Whether ``model`` is repcurate's traceable form of an Ultralytics detector (no torch import needed)."""
    return type(model).__name__ == "TraceableYolo" and type(model).__module__ == "repcurate.frameworks.ultralytics_head"


class UltralyticsFramework(TorchFramework):
    """Ultralytics YOLOv8 / YOLO11 detectors: checkpoints and model objects, with their own pre- and
    postprocessing (a PyTorch model otherwise: outputs, MCT glue and export are PyTorch's)."""

    name = "ultralytics"
    channels_last = False

    def loads(self, spec: str) -> bool:
        return spec.lower().endswith(CHECKPOINT_SUFFIXES)

    def load(self, spec: str) -> Any:
        return load_checkpoint(spec)

    def owns(self, model: Any) -> bool:
        return is_traceable_yolo(model) or is_ultralytics_object(model)

    def adopt(self, model: Any, where: str) -> Any:
        """The model repcurate works with: an Ultralytics object made traceable (a TraceableYolo as is)."""
        return model if is_traceable_yolo(model) else traceable(model, where)

    def capture(self, model: Any, *, layer: str | Sequence[str] | None, spec: str, device: str = "cpu") -> Any:
        if layer:
            return TorchCapture(model, layer=layer, spec=spec, device=device)
        return HeadInputCapture(model, spec=spec, device=device)

    def preprocess_spec(self, model: Any) -> str:
        """The spec of the model's own preprocessing: a repcurate letterbox at its input size."""
        height, width = model.imgsz
        return f"repcurate.data.geometry:letterbox_{height}" if height == width else \
            f"repcurate.data.geometry:letterbox_{height}x{width}"

    def postprocess(self, model: Any) -> Callable[[list[np.ndarray]], list[tuple[Any, Any, Any]]]:
        """The model's own decoding: NMS over its (boxes, scores) outputs."""
        from repcurate.frameworks.ultralytics_head import nms_detections

        return nms_detections

    def class_names(self, model: Any) -> list[str]:
        """The checkpoint's class names, by class id."""
        return list(model.names)

