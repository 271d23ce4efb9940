"""Random-init Ultralytics YOLOv8n / YOLO11n detectors saved as checkpoints the way Ultralytics does (no download,
no training), at a small input size, and a tiny YOLO dataset of digits on photos for them."""
from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pytest

from tests.unit.data.annotated_testdata import NAMES, compose, write_yolo_splits

#: Input size of the test checkpoints (a multiple of the largest stride, 32): small, to keep CPU time low.
IMGSZ = 64


def require_ultralytics(config_dir: Path) -> None:
    """Skip when Ultralytics is not installed (it is in the test extra); keep it offline and its settings file in
    ``config_dir`` (never the user's home)."""
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    pytest.importorskip("ultralytics", reason="Ultralytics is not installed: pip install \".[ultralytics]\"")


def detection_model(config: str, *, classes: int = len(NAMES), seed: int = 0):
    """An Ultralytics ``DetectionModel`` (or segmentation/pose model for a ``-seg`` / ``-pose`` yaml) built from
    ``config`` (e.g. ``yolov8n.yaml``) with random weights, class names set."""
    import torch
    from ultralytics.nn.tasks import DetectionModel, PoseModel, SegmentationModel

    torch.manual_seed(seed)
    kind = SegmentationModel if "-seg" in config else PoseModel if "-pose" in config else DetectionModel
    model = kind(config, nc=classes, verbose=False)
    model.names = dict(enumerate(NAMES[:classes])) if classes <= len(NAMES) else \
        {i: f"class{i}" for i in range(classes)}
    return model.eval()


def save_checkpoint(model, path: Path, *, imgsz: int = IMGSZ, task: str = "detect") -> Path:
    """``model`` saved as Ultralytics' trainer saves ``best.pt`` (half-precision model, ``train_args`` with its
    ``imgsz``), so ``YOLO(path)`` loads it."""
    import copy

    import torch

    checkpoint = {"epoch": -1, "best_fitness": None, "model": copy.deepcopy(model).half(), "ema": None,
                  "train_args": {"imgsz": imgsz, "task": task, "model": "random-init"},
                  "date": datetime.datetime(2026, 1, 1).isoformat(), "version": "8.4", "license": "AGPL-3.0"}
    torch.save(checkpoint, path)
    return path


def digits_yolo(root: Path) -> Path:
    """A YOLO dataset (train 24, val 10 images of 64×48, 1–2 digits each, classes zero/one/two); its data.yaml."""
    def objects(count: int, seed: int) -> list[list[tuple[int, int]]]:
        rng = np.random.default_rng(seed)
        return [[(int(rng.integers(0, 3)), int(rng.integers(10, 20))) for _ in range(int(rng.integers(1, 3)))]
                for _ in range(count)]

    return write_yolo_splits(root, {"train": compose(objects(24, 1), seed=1), "val": compose(objects(10, 2), seed=2)})
