"""COCO mAP pooled from per-image box matches, and the paired bootstrap over images that the doctor adopts a
detection fix by.

**Per-image matches.** pycocotools' ``COCOeval.evaluate`` matches detections to reference boxes image by image
and class by class (greedy by score, at each IoU threshold 0.50:0.05:0.95, up to 100 detections per image); only
``accumulate`` pools the images. :func:`image_matches` runs ``evaluate`` once and keeps each image's matches
(:class:`ImageMatches`); :class:`MatchPool` then pools any multiset of images — the identity, or a bootstrap
resample given as per-image counts — with the arithmetic of ``accumulate`` and ``summarize`` (cumulative true and
false positives by descending score, precision made monotone, read at the 101 recall thresholds, averaged over the
classes that have a reference box). An image drawn twice counts its detections and boxes twice, exactly as if the
resampled list held two copies of it, so the pooled mAP equals pycocotools' on the resampled images (up to the
order among detections with equal scores, which pycocotools leaves to the image order) — without re-running the
matching per resample.

**Paired bootstrap.** :func:`bootstrap_significant` draws ``resamples`` (default 200) image resamples with a seeded
generator; each resample is scored on both arms (same images, same counts), and the trial wins when its mAP gain
is positive in at least 95 % of them (one-sided 5 %: ``(1 + #{gain ≤ 0}) / (1 + resamples) < 0.05``). Because
the statistic is the reported mAP itself, a gain that moves mAP consistently over the images is seen even when
the per-image F1 at one score threshold barely moves. Its power on the bundled detector's 300 val images
(``benchmarks/detection_bootstrap_power.py``, BENCHMARKS.md): about 80 % for a gain of 1.5–2 mAP points (73 % at
+1.5, 100 % at +2.2, 47 % at +0.9), no adoption at equal quality.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: COCO's IoU thresholds (0.50:0.05:0.95) and recall thresholds (0:0.01:1), as pycocotools' ``Params``.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: Bootstrap resamples of the paired test, and its one-sided level.
RESAMPLES = 200
ALPHA = 0.05


@dataclass(frozen=True)
class ClassMatches:
    """One image's detections of one class (descending score, at most 100) and its reference boxes of that class."""

    scores: np.ndarray  # (d,)
    matched: np.ndarray  # (T, d) bool: matched to a reference box at each IoU threshold
    ignored: np.ndarray  # (T, d) bool: matched to an ignored reference box (never with repcurate's references)
    boxes: int  # reference boxes not ignored


@dataclass(frozen=True)
class ImageMatches:
    """One image's per-class matches (class id → :class:`ClassMatches`); empty when the image has neither
    detections nor reference boxes."""

    classes: dict[int, ClassMatches] = field(default_factory=dict)


def image_matches(evaluated: object, images: int) -> list[ImageMatches]:
    """Each image's matches from a pycocotools ``COCOeval`` after ``evaluate()`` (image ids ``0..images-1``;
    area range "all", the largest ``maxDets``)."""
    params = evaluated.params  # type: ignore[attr-defined]
    image_ids = list(params.imgIds)
    areas = len(params.areaRng)
    per_image: list[dict[int, ClassMatches]] = [{} for _ in range(images)]
    for k, category in enumerate(params.catIds):
        for i, image_id in enumerate(image_ids):
            entry = evaluated.evalImgs[k * areas * len(image_ids) + i]  # type: ignore[attr-defined]
            if entry is None:
                continue
            per_image[int(image_id)][int(category)] = ClassMatches(
                np.asarray(entry["dtScores"], dtype=np.float64), np.asarray(entry["dtMatches"]) > 0,
                np.asarray(entry["dtIgnore"], dtype=bool), int(np.count_nonzero(np.asarray(entry["gtIgnore"]) == 0)))
    return [ImageMatches(c) for c in per_image]


def reference_only(boxes_per_image: Sequence[np.ndarray]) -> list[ImageMatches]:
    """Matches of images without any detection: only their reference box counts (class ids per box)."""
    empty = np.zeros((len(IOU_THRESHOLDS), 0), dtype=bool)
    return [ImageMatches({int(c): ClassMatches(np.zeros(0), empty, empty, int(n))
                          for c, n in zip(*np.unique(np.asarray(classes, dtype=np.int64), return_counts=True))})
            for classes in boxes_per_image]


@dataclass
class _ClassPool:
    image: np.ndarray  # (D,) image index of every detection, in pooled descending-score order
    true_pos: np.ndarray  # (T, D) float: matched and not ignored
    false_pos: np.ndarray  # (T, D) float: unmatched and not ignored
    boxes: np.ndarray  # (n,) reference boxes of the class per image


class MatchPool:
    """Per-image matches pooled per class, ready to be scored for any per-image counts (1 each: the eval set)."""

    def __init__(self, matches: Sequence[ImageMatches]) -> None:
        self.images = len(matches)
        self._classes: list[_ClassPool] = []
        for category in sorted({c for m in matches for c in m.classes}):
            rows = [(i, m.classes[category]) for i, m in enumerate(matches) if category in m.classes]
            scores = np.concatenate([r.scores for _, r in rows])
            order = np.argsort(-scores, kind="mergesort")  # pycocotools' order: stable over the image order
            image = np.concatenate([np.full(len(r.scores), i, dtype=np.int64) for i, r in rows])[order]
            matched = np.concatenate([r.matched for _, r in rows], axis=1)[:, order]
            ignored = np.concatenate([r.ignored for _, r in rows], axis=1)[:, order]
            boxes = np.zeros(self.images, dtype=np.float64)
            for i, r in rows:
                boxes[i] = r.boxes
            self._classes.append(_ClassPool(image, (matched & ~ignored).astype(np.float64),
                                            (~matched & ~ignored).astype(np.float64), boxes))

    def score(self, counts: np.ndarray | None = None) -> tuple[float, float]:
        """(mAP@0.5:0.95, mAP@0.5) of the images drawn ``counts`` times each (default: once each), as
        pycocotools' ``accumulate`` + ``summarize`` compute them; 0.0 when no class has a reference box."""
        weights = np.ones(self.images) if counts is None else np.asarray(counts, dtype=np.float64)
        per_class: list[np.ndarray] = []  # (T,) mean precision over the recall thresholds
        for pool in self._classes:
            references = float(pool.boxes @ weights)
            if references == 0:
                continue
            w = weights[pool.image]
            keep = w > 0
            w = w[keep]
            tp = np.cumsum(pool.true_pos[:, keep] * w, axis=1)
            fp = np.cumsum(pool.false_pos[:, keep] * w, axis=1)
            precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)))
            if tp.shape[1]:
                recall = tp / references
                pr = tp / (fp + tp + np.spacing(1))
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision made monotone
                for t in range(len(IOU_THRESHOLDS)):
                    at = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")
                    valid = at < tp.shape[1]
                    precision[t, valid] = pr[t, at[valid]]
            per_class.append(precision.mean(axis=1))
        if not per_class:
            return 0.0, 0.0
        table = np.stack(per_class)  # (K, T)
        return max(float(table.mean()), 0.0), max(float(table[:, 0].mean()), 0.0)


def bootstrap_gains(trial: Sequence[ImageMatches], incumbent: Sequence[ImageMatches], *,
                    resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """mAP@0.5:0.95 of ``trial`` minus ``incumbent`` on ``resamples`` seeded bootstrap resamples of the images
    (both arms on the same resample)."""
    if len(trial) != len(incumbent):
        raise ValueError(f"the arms score {len(trial)} and {len(incumbent)} images; a paired test needs the same images")
    a, b = MatchPool(trial), MatchPool(incumbent)
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    for r in range(resamples):
        counts = np.bincount(rng.integers(0, a.images, a.images), minlength=a.images) if a.images else np.zeros(0)
        gains[r] = a.score(counts)[0] - b.score(counts)[0]
    return gains


def bootstrap_significant(trial: Sequence[ImageMatches] | None, incumbent: Sequence[ImageMatches] | None, *,
                          resamples: int = RESAMPLES, alpha: float = ALPHA, seed: int = 0) -> bool:
    """Paired bootstrap over images (one-sided, seeded): is ``trial``'s mAP@0.5:0.95 higher than ``incumbent``'s
    on the same images, i.e. is its gain positive on all but a share < ``alpha`` of the resamples?"""
    if trial is None or incumbent is None or not len(trial):
        return False
    if MatchPool(trial).score()[0] <= MatchPool(incumbent).score()[0]:
        return False
    gains = bootstrap_gains(trial, incumbent, resamples=resamples, seed=seed)
    return (1 + int(np.count_nonzero(gains <= 0.0))) / (1 + resamples) < alpha
