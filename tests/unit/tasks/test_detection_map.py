"""The pooled COCO mAP of per-image matches equals pycocotools', and the paired bootstrap over images sees a real
mAP gain (on the example dataset's real boxes) that the per-image F1 permutation test does not."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.example_detection import compose_split
from repcurate.tasks.base import permutation_significant
from repcurate.tasks.detection import REFERENCE_SCORE, Detections, coco_map, match_images, matched_f1
from repcurate.tasks.detection_map import MatchPool, bootstrap_gains, bootstrap_significant

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def truth() -> list[Detections]:
    """Ground-truth boxes of the example detection dataset's first 150 val composites (8 % background images)."""
    out = []
    for composite in compose_split("val", 150, size=128):
        objects = np.array([o[1:] for o in composite.objects], dtype=np.float64).reshape(-1, 4)
        classes = np.array([o[0] for o in composite.objects], dtype=np.int64)
        out.append(Detections(objects, np.ones(len(objects)), classes))
    return out


def _predict(truth: list[Detections], jitter: float, seed: int, *, false_positives: float = 0.3) -> list[Detections]:
    """A detector's output: every true box found with corners moved by ``jitter`` px (σ, drawn with ``seed``), plus
    the same false positives on a share of the images and the same continuous scores (no ties) for every arm."""
    rng, moves = np.random.default_rng(0), np.random.default_rng(seed)
    out = []
    for ref in truth:
        boxes = ref.boxes + moves.normal(0.0, jitter, ref.boxes.shape)
        extra = int(rng.random() < false_positives)
        corner = rng.uniform(0, 100, (extra, 2))
        boxes = np.vstack([boxes, np.hstack([corner, corner + 20])])
        classes = np.concatenate([ref.classes, rng.integers(0, 5, extra)])
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(ref.boxes)), rng.uniform(0.3, 0.7, extra)])
        out.append(Detections(boxes, scores, classes))
    return out


def test_pooled_matches_score_what_pycocotools_scores_on_the_same_and_on_resampled_images(truth):
    found = _predict(truth, 2.0, 1)
    pool = MatchPool(match_images(found, truth))
    assert pool.score() == pytest.approx(coco_map(found, truth), abs=1e-12)
    counts = np.bincount(np.random.default_rng(5).integers(0, len(truth), len(truth)), minlength=len(truth))
    drawn = np.repeat(np.arange(len(truth)), counts)  # the resample as a list of images, copies side by side
    assert pool.score(counts) == pytest.approx(coco_map([found[i] for i in drawn], [truth[i] for i in drawn]), abs=1e-12)
    assert pool.score(counts) != pytest.approx(pool.score(), abs=1e-6)


def test_no_detection_scores_zero_and_images_without_boxes_count_nothing(truth):
    nothing = [Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)) for _ in truth]
    assert MatchPool(match_images(nothing, truth)).score() == (0.0, 0.0)
    assert MatchPool(match_images(truth, truth)).score() == pytest.approx((1.0, 1.0))


def test_the_bootstrap_adopts_a_clearly_better_set_and_nothing_else(truth):
    better, worse = match_images(_predict(truth, 1.0, 2), truth), match_images(_predict(truth, 4.0, 3), truth)
    assert bootstrap_significant(better, worse)
    assert not bootstrap_significant(worse, better)
    assert not bootstrap_significant(better, better)
    gains = bootstrap_gains(better, worse, resamples=50, seed=3)
    assert gains.shape == (50,) and (gains > 0).all()
    assert np.array_equal(gains, bootstrap_gains(better, worse, resamples=50, seed=3))  # seeded


def test_a_small_localisation_gain_is_seen_by_the_bootstrap_but_not_by_the_f1_sign_test(truth):
    """Tighter boxes raise mAP@0.5:0.95 by a few points while nearly every box still matches at IoU 0.5: the
    per-image F1 hardly moves, the reported metric does."""
    trial, incumbent = _predict(truth, 1.2, 4), _predict(truth, 1.3, 5)
    gain = coco_map(trial, truth)[0] - coco_map(incumbent, truth)[0]
    assert 0.01 < gain < 0.04
    assert bootstrap_significant(match_images(trial, truth), match_images(incumbent, truth))
    f1 = [np.array([matched_f1(d.above(REFERENCE_SCORE), r) for d, r in zip(arm, truth)]) for arm in (trial, incumbent)]
    assert not permutation_significant(f1[0], f1[1])
