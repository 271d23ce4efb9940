"""The bundled detector: loads from its committed weights, keeps its output/postprocess contract, detects
well on unseen composites (pycocotools mAP), and traces with MCT's tracer (one real PTQ run, slow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.composites import detector_map, mct_quantize, model_inputs
from repcurate.frameworks.torch_trace import trace
from repcurate.models import tiny_yolo

#: Measured on the 40-image split of conftest.py (BENCHMARKS.md); the margin absorbs BLAS/platform drift only.
MEASURED_MAP50 = 0.620
MARGIN = 0.03


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_yolo.make_model()


def test_raw_outputs_are_the_documented_tuple(model: torch.nn.Module, composites: Path) -> None:
    inputs, _ = model_inputs(composites, "val", tiny_yolo.preprocess, limit=3)
    assert inputs.shape == (3, 3, 128, 128) and inputs.dtype == np.float32 and 0.0 <= inputs.min() <= inputs.max() <= 1.0
    with torch.no_grad():
        outputs = model(torch.from_numpy(inputs))
    assert isinstance(outputs, tuple)
    assert [tuple(o.shape) for o in outputs] == [(3, 4, 16, 16), (3, 6, 16, 16), (3, 4, 8, 8), (3, 6, 8, 8)]
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert any(isinstance(m, torch.nn.SiLU) for m in model.modules())


def test_postprocess_contract_on_tensors_and_on_numpy_arrays(model: torch.nn.Module, composites: Path) -> None:
    inputs, _ = model_inputs(composites, "val", tiny_yolo.preprocess, limit=4)
    with torch.no_grad():
        outputs = model(torch.from_numpy(inputs))
    from_tensors = tiny_yolo.postprocess(outputs, max_detections=20)
    from_arrays = tiny_yolo.postprocess([o.numpy().astype(np.float64) for o in outputs], max_detections=20)
    assert len(from_tensors) == len(from_arrays) == 4
    for (boxes, scores, classes), (boxes2, scores2, classes2) in zip(from_tensors, from_arrays):
        assert boxes.dtype == np.float32 and scores.dtype == np.float32 and classes.dtype == np.int64
        assert boxes.shape == (len(scores), 4) and classes.shape == scores.shape and len(scores) <= 20
        assert np.all(np.diff(scores) <= 0) and np.all((scores > 0.001) & (scores <= 1))
        assert np.all(boxes[:, :2] <= boxes[:, 2:]) and boxes.min() >= 0 and boxes.max() <= 128
        assert set(classes.tolist()) <= set(range(6))
        np.testing.assert_allclose(boxes, boxes2, atol=1e-3)
        np.testing.assert_array_equal(classes, classes2)
        np.testing.assert_allclose(scores, scores2, atol=1e-6)
    assert len(tiny_yolo.postprocess(outputs, score_threshold=0.999)[0][0]) < len(from_tensors[0][0])


def test_committed_weights_detect_unseen_composites(model: torch.nn.Module, composites: Path) -> None:
    scores = detector_map(model, composites, "val")
    assert scores["map50"] >= MEASURED_MAP50 - MARGIN
    assert 0.0 < scores["map50_95"] < scores["map50"]


def test_traces_with_mcts_tracer(model: torch.nn.Module, composites: Path) -> None:
    inputs, _ = model_inputs(composites, "val", tiny_yolo.preprocess, limit=2)
    preflight = trace(model, inputs)
    assert preflight.ok, preflight.error
    kinds = set(preflight.graph.kinds().values())
    assert {"Conv2d", "SiLU", "cat", "Upsample"} <= kinds


@pytest.mark.slow
def test_mct_8bit_ptq_keeps_decodable_detections(model: torch.nn.Module, composites: Path) -> None:
    calibration, _ = model_inputs(composites, "val", tiny_yolo.preprocess, limit=8)
    quantized = mct_quantize(model, calibration, batch_size=4)
    with torch.no_grad():
        outputs = quantized(torch.from_numpy(calibration[:2]))
    assert [tuple(o.shape) for o in outputs] == [(2, 4, 16, 16), (2, 6, 16, 16), (2, 4, 8, 8), (2, 6, 8, 8)]
    assert detector_map(quantized, composites, "val")["map50"] >= MEASURED_MAP50 - 0.1


def test_the_decoded_variant_returns_decode_s_boxes_and_the_same_detections():
    import numpy as np
    import torch

    from repcurate.models import tiny_yolo

    raw, decoded = tiny_yolo.make_model(), tiny_yolo.make_decoded_model()
    x = torch.rand(3, 3, tiny_yolo.IMAGE_SIZE, tiny_yolo.IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs, (boxes, scores) = raw(x), decoded(x)
    expected_boxes, logits = tiny_yolo.decode(outputs)
    torch.testing.assert_close(boxes, expected_boxes, rtol=0, atol=1e-5)
    torch.testing.assert_close(scores, logits.sigmoid(), rtol=0, atol=1e-6)
    for (b0, s0, c0), (b1, s1, c1) in zip(tiny_yolo.postprocess([o.numpy() for o in outputs]),
                                          tiny_yolo.postprocess_decoded([boxes.numpy(), scores.numpy()])):
        assert np.array_equal(c0, c1) and np.allclose(b0, b1, atol=1e-4) and np.allclose(s0, s1, atol=1e-6)
