"""The detection task: pycocotools mAP on hand-checkable boxes, detections mapped back to the image through its frame, per-image
matched-box F1, the user's postprocess and its bad outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repcurate import tasks
from repcurate.data.annotations import AnnotatedImage, Box
from repcurate.data.geometry import Frame, letterbox
from repcurate.errors import InputError, UsageError
from repcurate.tasks.detection import Detections, DetectionTask, coco_map, ground_truth, matched_f1

REFERENCE = [Detections(np.array([[10.0, 10.0, 30.0, 30.0], [40.0, 5.0, 60.0, 25.0]]), np.ones(2), np.array([0, 1])),
             Detections(np.array([[0.0, 0.0, 20.0, 40.0]]), np.ones(1), np.array([1]))]


def _shifted(by: float) -> list[Detections]:
    return [Detections(r.boxes + by, np.full(len(r.boxes), 0.9), r.classes) for r in REFERENCE]


def test_identical_detections_score_map_one_and_shifted_boxes_less():
    assert coco_map(_shifted(0.0), REFERENCE) == (1.0, 1.0)
    small_all, small_50 = coco_map(_shifted(2.0), REFERENCE)  # IoU of a 20×20 box shifted 2 px diagonally: 0.68
    assert small_50 == 1.0 and 0.3 < small_all < 1.0
    assert coco_map(_shifted(15.0), REFERENCE) == (0.0, 0.0)  # no box overlaps its reference by IoU ≥ 0.5
    wrong_class = [Detections(r.boxes, r.scores, 1 - r.classes) for r in REFERENCE]
    assert coco_map(wrong_class, REFERENCE)[1] < 1.0


def test_matched_f1_counts_same_class_matches_at_iou_half():
    assert matched_f1(_shifted(0.0)[0], REFERENCE[0]) == 1.0
    assert matched_f1(_shifted(15.0)[0], REFERENCE[0]) == 0.0
    extra = Detections(np.vstack([REFERENCE[0].boxes, [[70, 70, 80, 80]]]), np.ones(3), np.array([0, 1, 0]))
    assert matched_f1(extra, REFERENCE[0]) == pytest.approx(2 * 2 / (3 + 2))
    empty = Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    assert matched_f1(empty, empty) == 1.0 and matched_f1(empty, REFERENCE[1]) == 0.0


def test_detections_are_mapped_back_through_each_images_frame_before_scoring():
    image = AnnotatedImage(Path("a.png"), width=200, height=100, boxes=(Box(2, 20, 10, 120, 60),))
    frame = letterbox(64).frame(200, 100)  # scale 0.32, 16 px of padding above
    truth = ground_truth([image], lambda w, h: letterbox(64).frame(w, h))
    np.testing.assert_allclose(truth[0].boxes.boxes, [[20, 10, 120, 60]])  # ground truth stays in the image's pixels
    assert truth[0].boxes.classes.tolist() == [2]
    found = Detections(frame.to_input(np.array([[20.0, 10.0, 120.0, 60.0]])), np.ones(1), np.array([2]))
    np.testing.assert_allclose(found.boxes, [[6.4, 19.2, 38.4, 35.2]])
    np.testing.assert_allclose(truth[0].detections_here(found).boxes, [[20, 10, 120, 60]])
    task = DetectionTask().configure(frame_of=lambda w, h: letterbox(64).frame(w, h))
    assert task.references(["cat"], [], manifest={}, class_map=None) is None  # class folders: float reference
    references = task.references([image], [], manifest={}, class_map=None)
    assert task.score([found.boxes[None], found.scores[None], found.classes[None]], [], references)["map"] == 1.0
    stretched = DetectionTask().configure(frame_of=lambda w, h: Frame.stretch(w, h, 64, 64))
    wrong = stretched.references([image], [], manifest={}, class_map=None)
    assert stretched.score([found.boxes[None], found.scores[None], found.classes[None]], [], wrong)["map"] < 0.5


def _decode(outputs):
    boxes, scores = outputs
    return [(b, s, np.zeros(len(s))) for b, s in zip(boxes, scores)]


def test_postprocess_output_is_scored_and_the_float_model_scores_one():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 40, size=(20, 5, 2))
    boxes = np.concatenate([corner, corner + 10], axis=2)
    scores = rng.uniform(0.3, 1.0, size=(20, 5))
    task = tasks.configured(tasks.get("detection"), postprocess=_decode, where="t.py:decode")
    float_outputs = [boxes, scores]
    assert task.float_metrics(float_outputs, None) == {"map": 1.0, "map50": 1.0, "f1_50": 1.0}
    noisy = [boxes + rng.normal(scale=3.0, size=boxes.shape), scores]
    result = task.score(noisy, float_outputs, None)
    assert result["map"] < result["map50"] <= 1.0 and result["map"] < 1.0
    per_image = task.per_sample(noisy, float_outputs, None)
    assert per_image.shape == (20,) and task.aggregate(per_image) == pytest.approx(result["map"], abs=1e-6)
    exact = task.per_sample(float_outputs, float_outputs, None)
    assert task.significant(exact, per_image) and not task.significant(per_image, exact)


def test_bad_postprocess_results_are_input_errors_naming_it():
    float_outputs = [np.zeros((2, 3, 4)), np.ones((2, 3))]
    short = tasks.configured(tasks.get("detection"), postprocess=lambda outputs: [], where="t.py:short")
    with pytest.raises(InputError, match=r"t\.py:short returned 0 results for 2 images"):
        short.score(float_outputs, float_outputs, None)
    ragged = tasks.configured(tasks.get("detection"), postprocess=lambda o: [(np.zeros((2, 4)), [1.0], [0])] * 2,
                              where="t.py:ragged")
    with pytest.raises(InputError, match="2 boxes, 1 scores and 1 classes"):
        ragged.score(float_outputs, float_outputs, None)
    with pytest.raises(InputError, match="--postprocess"):
        tasks.get("detection").score([np.zeros((2, 5))], [np.zeros((2, 5))], None)
    with pytest.raises(UsageError, match="--task detection"):
        tasks.configured(tasks.get("classification"), postprocess=_decode)
