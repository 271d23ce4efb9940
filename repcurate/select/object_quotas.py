"""Object-level quotas for detection / segmentation data: a greedy weighted multi-cover of class instances.

An image holds several objects of several classes, so per-image class quotas cannot balance *instances*. Here:

1. **Strata.** Every image with objects belongs to the stratum ``"<class>:<size>"`` of its *primary* class — the
   rarest class it holds (fewest instances in the whole dataset; ties: the lower class id) — and the COCO size
   bucket (small / medium / large) of that class's median box in the image. Images without objects form the
   background stratum (label ``None``). The strata are the labels the selection balances; inside each stratum
   the embedding strategy (k-means / k-center / random, ``--match-dir``) picks *which* images, as for classes.
2. **Background share.** ``round(background_share × size)`` images (default 5 %, :data:`DEFAULT_BACKGROUND_SHARE`)
   come from the background stratum when it has them; when object images run out, background images fill in.
3. **Multi-cover.** The other images are allotted to strata one at a time (a greedy weighted set multi-cover,
   every stratum represented by its mean composition): each step finds the class that is least covered so far
   relative to its target weight (uniform: every class alike; proportional: its share of the instances) among
   the classes with supply left, and takes an image from the stratum holding that class (a stratum of which it
   is the primary class when one has images left, so any image the embedding picks holds it) that most increases
   ``Σ_c w_c·log(1 + covered_c) + ¼·Σ_size log(1 + covered_size) + ¼·Σ_bucket log(1 + images_bucket)`` — a
   concave utility, so every further instance of an already well-covered class is worth less, and object sizes
   and objects per image (1, 2–3, 4–7, 8+) spread too. Ties go to a seeded order of the strata: the plan is
   deterministic for a seed. With at least as many object images as classes, every class that is some image's
   primary class is in the set (a class that only ever appears beside a rarer one is covered through that
   one's images, as they happen to hold it).

Crowd regions (COCO ``iscrowd``) are not instances: they count for neither classes, sizes nor objects per image.
This module reads records duck-typed (``record.boxes``, each box's ``cls``, ``size`` and ``crowd``), so it does
not depend on :mod:`repcurate.data`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repcurate.select.quotas import ClassQuota, compute_quotas

#: Share of the set given to background images (no object) when the data has them: 5 %, the low end of the
#: 0–10 % Ultralytics' training tips recommend to teach a detector what is not an object; calibration sees
#: background statistics without spending much of the set on them.
DEFAULT_BACKGROUND_SHARE = 0.05
#: The name of the background stratum (label ``None``: images without objects) in the manifest and the reports.
BACKGROUND_NAME = "(background)"
SIZES = ("small", "medium", "large")
#: Objects-per-image buckets: (label, lowest count, highest count).
OBJECT_BUCKETS = (("1", 1, 1), ("2-3", 2, 3), ("4-7", 4, 7), ("8+", 8, 10**9))
#: Weight of the size and objects-per-image terms against the class term of the utility.
SPREAD_WEIGHT = 0.25


def _counted(record: Any) -> list[Any]:
    return [box for box in getattr(record, "boxes", ()) if not getattr(box, "crowd", False)]


def carries_objects(records: Sequence[Any]) -> bool:
    """True when the records come from an annotated dataset (each has a ``boxes`` attribute)."""
    return bool(records) and all(hasattr(r, "boxes") for r in records)


def _bucket(count: int) -> int | None:
    for index, (_label, low, high) in enumerate(OBJECT_BUCKETS):
        if low <= count <= high:
            return index
    return None


@dataclass
class ObjectBalance:
    """The strata of a dataset's images and the object-level quota rule over them (see the module docstring)."""

    names: list[str]
    labels: list[str | None]
    class_counts: np.ndarray  # (images, classes) instances per image
    size_counts: np.ndarray  # (images, 3) instances per size bucket
    object_buckets: np.ndarray  # (images, 4) one-hot objects-per-image bucket (all zero: background)
    background_share: float = DEFAULT_BACKGROUND_SHARE
    seed: int = 0
    #: stratum → its primary class id (every image of the stratum holds that class).
    primary: dict[str, int] = field(default_factory=dict)
    #: stratum → mean (classes, sizes, objects-per-image bucket) composition of its images.
    means: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    #: Instances per class of the whole dataset when the records are its candidate pool
    #: (:mod:`repcurate.select.object_pool`): proportional weights follow the dataset, not the pool.
    class_totals: np.ndarray | None = None

    def __post_init__(self) -> None:
        rows_of: dict[str, list[int]] = {}
        for row, label in enumerate(self.labels):
            if label is not None:
                rows_of.setdefault(label, []).append(row)
        self.means = {label: (self.class_counts[rows].mean(axis=0), self.size_counts[rows].mean(axis=0),
                              self.object_buckets[rows].mean(axis=0)) for label, rows in rows_of.items()}

    @classmethod
    def from_records(cls, records: Sequence[Any], names: Sequence[str], *,
                     background_share: float = DEFAULT_BACKGROUND_SHARE, seed: int = 0,
                     class_totals: Sequence[int] | None = None) -> ObjectBalance:
        """Strata and per-image compositions of annotated records (``record.boxes``); ``class_totals``: the whole
        dataset's instances per class when ``records`` are a pool of it."""
        if not 0.0 <= background_share <= 1.0:
            raise ValueError(f"background_share must be from 0 to 1, got {background_share!r}")
        n = len(records)
        most = max((box.cls for r in records for box in r.boxes), default=-1)
        names = list(names) + [f"class_{i}" for i in range(len(names), most + 1)]
        class_counts = np.zeros((n, len(names)), dtype=np.int64)
        size_counts = np.zeros((n, len(SIZES)), dtype=np.int64)
        object_buckets = np.zeros((n, len(OBJECT_BUCKETS)), dtype=np.int64)
        for row, record in enumerate(records):
            boxes = _counted(record)
            for box in boxes:
                class_counts[row, box.cls] += 1
                size_counts[row, SIZES.index(box.size)] += 1
            bucket = _bucket(len(boxes))
            if bucket is not None:
                object_buckets[row, bucket] = 1
        frequency = class_counts.sum(axis=0)
        labels: list[str | None] = []
        primary_of: dict[str, int] = {}
        for record in records:
            boxes = _counted(record) or list(getattr(record, "boxes", ()))  # a crowd-only image: its crowd classes
            if not boxes:
                labels.append(None)
                continue
            present = sorted({box.cls for box in boxes}, key=lambda c: (frequency[c], c))
            primary = present[0]
            areas = sorted(box.area for box in boxes if box.cls == primary)
            median = next(box for box in boxes if box.cls == primary and box.area == areas[(len(areas) - 1) // 2])
            stratum = f"{names[primary]}:{median.size}"
            labels.append(stratum)
            primary_of[stratum] = primary
        return cls(names=names, labels=labels, class_counts=class_counts, size_counts=size_counts,
                   object_buckets=object_buckets, background_share=background_share, seed=seed, primary=primary_of,
                   class_totals=None if class_totals is None else
                   np.pad(np.asarray(class_totals, dtype=np.float64), (0, max(0, len(names) - len(class_totals)))))

    def _tie_rank(self, strata: list[str]) -> dict[str, int]:
        order = np.random.default_rng(np.random.SeedSequence([self.seed, 0x0B1EC7])).permutation(len(strata))
        return {stratum: int(rank) for stratum, rank in zip(strata, order)}

    def plan(self, available: dict[str | None, int], size: int, balance: str) -> dict[str | None, int]:
        """Images per stratum (background: ``None``) for a set of ``size``, each at most its ``available``."""
        if balance not in ("uniform", "proportional"):
            raise ValueError(f"balance must be uniform or proportional, got {balance!r}")
        background = int(available.get(None, 0))
        strata = sorted(s for s in available if s is not None and available[s] > 0)
        supply = np.array([available[s] for s in strata], dtype=np.int64)
        wanted_background = min(background, round(self.background_share * size))
        objects = int(min(size - wanted_background, supply.sum()))
        plan: dict[str | None, int] = {None: min(background, size - objects)} if background else {}
        if not strata:
            return plan
        cls_mean, size_mean, obj_mean = (np.array([self.means[s][part] for s in strata], dtype=np.float64)
                                         for part in range(3))
        instances = (cls_mean * supply[:, None]).sum(axis=0)
        has_supply = instances > 0
        weight = np.where(has_supply, 1.0, 0.0)
        if balance == "proportional":
            totals = instances if self.class_totals is None else np.maximum(self.class_totals[:instances.size], instances)
            weight = np.where(has_supply, totals / totals[has_supply].mean(), 0.0)
        rank = self._tie_rank(strata)
        tie = np.array([rank[s] for s in strata], dtype=np.float64)
        taken = np.zeros(len(strata), dtype=np.int64)
        covered = np.zeros(cls_mean.shape[1])
        covered_size = np.zeros(len(SIZES))
        covered_obj = np.zeros(len(OBJECT_BUCKETS))
        class_tie = np.random.default_rng(np.random.SeedSequence([self.seed, 0xC1A55])).permutation(covered.size)
        primary = np.array([self.primary.get(s, -1) for s in strata])
        for _step in range(objects):
            open_strata = taken < supply
            left = (cls_mean[open_strata] > 0).any(axis=0) & has_supply
            candidates = open_strata.copy()
            if left.any():
                ratio = np.where(left, covered / np.where(weight > 0, weight, 1.0), np.inf)
                lowest = np.flatnonzero(ratio == ratio.min())
                deficit = lowest[np.argmin(class_tie[lowest])]
                # Strata whose every image holds the class first (the embedding picks any of their images).
                holding = candidates & (primary == deficit)
                candidates = holding if holding.any() else candidates & (cls_mean[:, deficit] > 0)
            gain = (weight * (np.log1p(covered + cls_mean) - np.log1p(covered))).sum(axis=1)
            gain += SPREAD_WEIGHT * (np.log1p(covered_size + size_mean) - np.log1p(covered_size)).sum(axis=1)
            gain += SPREAD_WEIGHT * (np.log1p(covered_obj + obj_mean) - np.log1p(covered_obj)).sum(axis=1)
            gain = np.where(candidates, np.round(gain, 12), -np.inf)
            best = np.flatnonzero(gain == gain.max())
            pick = best[np.argmin(tie[best])]
            taken[pick] += 1
            covered += cls_mean[pick]
            covered_size += size_mean[pick]
            covered_obj += obj_mean[pick]
        plan.update({s: int(k) for s, k in zip(strata, taken) if k > 0})
        return plan

    def quotas(self, available: dict[str | None, int], size: int, balance: str) -> list[ClassQuota]:
        """The quota rule :func:`repcurate.select.selection.select_representatives` takes: one quota per stratum
        with supply (background first), requested = planned (background: its share of ``size``)."""
        plan = self.plan(available, size, balance)
        wanted_background = round(self.background_share * size)
        order = sorted((s for s in available if available[s] > 0), key=lambda s: "" if s is None else s)
        return [ClassQuota(s, available[s], wanted_background if s is None else plan.get(s, 0), plan.get(s, 0))
                for s in order]

    def report(self, chosen: Sequence[int], balance: str = "uniform") -> dict[str, Any]:
        """The manifest's ``objects`` section: per class instances / images available and in the set, the even
        share of the set's instances and whether supply fell short of it; sizes, objects per image, background."""
        rows = np.asarray(list(chosen), dtype=np.int64)
        picked = self.class_counts[rows] if rows.size else np.zeros((0, len(self.names)), dtype=np.int64)
        available = self.class_counts.sum(axis=0)
        selected = picked.sum(axis=0)
        supply: dict[str | None, int] = {name: int(available[i]) for i, name in enumerate(self.names) if available[i] > 0}
        fair = {q.label: q for q in compute_quotas(supply, int(selected.sum()), balance)} if selected.sum() else {}
        classes: list[dict[str, Any]] = []
        for i, name in enumerate(self.names):
            share = fair.get(name)
            classes.append({"id": i, "name": name, "instances_available": int(available[i]),
                            "instances_selected": int(selected[i]),
                            "images_available": int((self.class_counts[:, i] > 0).sum()),
                            "images_selected": int((picked[:, i] > 0).sum()),
                            "even_share": 0 if share is None else share.requested})
        background = np.array([lab is None for lab in self.labels])
        buckets = self.object_buckets
        return {
            "names": list(self.names),
            "classes": classes,
            "unmet_quotas": [c["name"] for c in classes
                             if c["instances_available"] < c["even_share"] or c["instances_available"] == 0],
            "sizes": {s: {"available": int(self.size_counts[:, j].sum()),
                          "selected": int(self.size_counts[rows, j].sum()) if rows.size else 0}
                      for j, s in enumerate(SIZES)},
            "objects_per_image": {label: {"available": int(buckets[:, j].sum()),
                                          "selected": int(buckets[rows, j].sum()) if rows.size else 0}
                                  for j, (label, _low, _high) in enumerate(OBJECT_BUCKETS)},
            "background": {"available": int(background.sum()),
                           "selected": int(background[rows].sum()) if rows.size else 0,
                           "share": self.background_share},
        }
