"""The bundled segmenter: loads from its committed weights, segments unseen composites (mIoU from a
confusion matrix), and traces with MCT's tracer (one real PTQ run, slow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.composites import confusion, mct_quantize, miou_of, model_inputs, segmenter_miou
from repcurate.frameworks.torch_trace import trace
from repcurate.models import unet_lite

#: Measured on the 40-image split of conftest.py (BENCHMARKS.md); the margin absorbs BLAS/platform drift only.
MEASURED_MIOU = 0.470
MARGIN = 0.03


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return unet_lite.make_model()


def test_logits_cover_every_pixel_and_class(model: torch.nn.Module, composites: Path) -> None:
    inputs, _ = model_inputs(composites, "val", unet_lite.preprocess, limit=2)
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs))
    assert tuple(logits.shape) == (2, unet_lite.NUM_CLASSES, 128, 128)
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_miou_arithmetic() -> None:
    truth = np.array([[0, 0, 1, 1]])
    matrix = confusion(np.array([[0, 1, 1, 1]]), truth, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    miou, per_class = miou_of(matrix)
    assert per_class[:2] == [0.5, 2 / 3] and np.isnan(per_class[2]) and miou == pytest.approx((0.5 + 2 / 3) / 2)


def test_committed_weights_segment_unseen_composites(model: torch.nn.Module, composites: Path) -> None:
    scores = segmenter_miou(model, composites, "val")
    assert scores["miou"] >= MEASURED_MIOU - MARGIN
    assert scores["iou_per_class"][0] > 0.9  # background


def test_traces_with_mcts_tracer(model: torch.nn.Module, composites: Path) -> None:
    inputs, _ = model_inputs(composites, "val", unet_lite.preprocess, limit=2)
    preflight = trace(model, inputs)
    assert preflight.ok, preflight.error
    assert {"Conv2d", "SiLU", "cat", "Upsample"} <= set(preflight.graph.kinds().values())


@pytest.mark.slow
def test_mct_8bit_ptq_keeps_the_segmentation(model: torch.nn.Module, composites: Path) -> None:
    calibration, _ = model_inputs(composites, "val", unet_lite.preprocess, limit=8)
    quantized = mct_quantize(model, calibration, batch_size=4)
    assert segmenter_miou(quantized, composites, "val")["miou"] >= MEASURED_MIOU - 0.1
