"""Candidate pools of annotated datasets: per *object class*, a seeded random sample of the images holding it.

An image of a detection or segmentation dataset holds several classes, so the class-folder pool of
:mod:`repcurate.select.pool` (one label per file) does not apply. Here the labels are read for every image (they
are small text), and only the pooled images are fingerprinted, decoded and embedded:

- **Per object class.** Class ``c``'s images (every image holding a counted instance of ``c``, in sorted path
  order) are permuted with ``SeedSequence([seed, crc32(class name), pool stream])``; the first ``k_c`` are drawn.
  The pool is the union of every class's draw, so an image drawn for one class also counts for the others it holds.
  A crowd-only image (COCO ``iscrowd``) counts for its crowd classes, as in the object quotas.
- **How many.** ``--pool N``: ``k_c = min(images of c, N)``. ``--pool auto`` (the default): the object-level plan
  (:mod:`repcurate.select.object_quotas`) is computed on the whole dataset's labels for ``--size``; a class's
  quota is the images the plan gives the strata of which it is the rarest class, and
  ``k_c = min(images of c, max(POOL_FACTOR × quota, POOL_MIN))`` — the classification rule, so a rare class is kept
  whole while it is small. ``--pool all``: every image.
- **Background** images (no object) are pooled like one more class whose quota is their share of the set
  (``--background-share``; the images the plan gives the background): ``auto`` draws
  ``min(background images, max(POOL_FACTOR × that quota, POOL_MIN))``, ``N`` draws ``min(background images, N)``.
- **Nested and deterministic.** Every class's draw is a prefix of one permutation that depends only on the seed,
  the class name and that class's image list, and ``k_c`` and the background count never shrink when ``N`` or
  ``--size`` grow: a smaller pool is a subset of a larger one. Same labels + seed ⇒ same pool.

Every class present in the dataset is present in the pool (``k_c ≥ 1``). Records are read duck-typed
(``record.boxes``, each box's ``cls`` and ``crowd``), like :mod:`repcurate.select.object_quotas`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE, ObjectBalance
from repcurate.select.pool import POOL_FACTOR, POOL_MIN, PoolRule, pool_digest, pool_seed


def image_classes(record: Any) -> frozenset[int]:
    """The class ids an image counts for: its non-crowd boxes' classes (a crowd-only image: its crowd classes)."""
    boxes = list(getattr(record, "boxes", ()))
    counted = [box for box in boxes if not getattr(box, "crowd", False)]
    return frozenset(int(box.cls) for box in (counted or boxes))


def describe_object_rule(rule: PoolRule, background_share: float) -> str:
    """The rule in words, as the manifest records it."""
    if rule.kind == "all":
        return "all: every image of the dataset"
    if rule.kind == "fixed":
        return (f"{rule.per_class} per object class: min(images holding it, {rule.per_class}), seeded uniform random "
                f"among the images holding the class; background images likewise")
    return (f"auto: per object class min(images holding it, max({POOL_FACTOR} x quota, {POOL_MIN})), the quota being "
            "the images the object-level plan of the whole dataset gives the strata of which it is the rarest class; "
            "seeded uniform random among the images holding the class; background images likewise, their quota "
            f"being their share of the set ({background_share:g})")


@dataclass
class ObjectPool:
    """The images of an annotated dataset that ``build`` embeds, and per object class how many were available."""

    rule: PoolRule
    background_share: float
    rows: np.ndarray  # ascending row numbers of the pooled images
    names: list[str]
    class_images: list[int]  # per class id: images holding it
    class_pooled: list[int]  # per class id: pooled images holding it
    background_images: int
    background_pooled: int
    class_instances: np.ndarray  # per class id: instances in the whole dataset (proportional weights)
    images: int

    @property
    def complete(self) -> bool:
        """Whether every image is in the pool."""
        return int(self.rows.size) >= self.images

    def manifest_section(self, paths: Sequence[str], seed: int) -> dict[str, Any]:
        """The manifest's ``pool``: the rule, per object class the images holding it in the dataset (``files``) and
        in the pool (``pool``), the background (``label`` null) likewise, the pool's digest."""
        classes: list[dict[str, Any]] = [{"label": None, "files": self.background_images,
                                          "pool": self.background_pooled}] if self.background_images else []
        classes += [{"label": name, "id": i, "files": self.class_images[i], "pool": self.class_pooled[i]}
                    for i, name in enumerate(self.names) if self.class_images[i] > 0]
        return {"rule": describe_object_rule(self.rule, self.background_share), "value": self.rule.value,
                "seed": seed, "per": "object class: images holding it (an image counts for every class it holds)",
                "files": self.images, "pooled": int(self.rows.size), "paths_sha256": pool_digest(paths),
                "classes": classes}


def plan_quotas(records: Sequence[Any], names: Sequence[str], *, size: int, balance: str,
                background_share: float, seed: int) -> dict[int | None, int]:
    """Per class id: the images the object-level plan of all ``records`` gives the strata it is the rarest class of
    (``None``: the background's images)."""
    objects = ObjectBalance.from_records(records, names, background_share=background_share, seed=seed)
    available: dict[str | None, int] = {}
    for label in objects.labels:
        available[label] = available.get(label, 0) + 1
    quotas: dict[int | None, int] = {}
    for stratum, planned in objects.plan(available, size, balance).items():
        key = None if stratum is None else objects.primary[stratum]
        quotas[key] = quotas.get(key, 0) + planned
    return quotas


def choose_object_pool(records: Sequence[Any], names: Sequence[str], rule: PoolRule, *, size: int, balance: str,
                       seed: int, background_share: float = DEFAULT_BACKGROUND_SHARE) -> ObjectPool:
    """The pool of an annotated dataset's images (``records`` in sorted path order, each with ``boxes``)."""
    held = [image_classes(r) for r in records]
    most = max((c for classes in held for c in classes), default=-1)
    names = list(names) + [f"class_{i}" for i in range(len(names), most + 1)]
    rows_of: list[list[int]] = [[] for _ in names]
    background_rows: list[int] = []
    instances = np.zeros(len(names), dtype=np.int64)
    for row, (record, classes) in enumerate(zip(records, held)):
        for c in classes:
            rows_of[c].append(row)
        if not classes:
            background_rows.append(row)
        for box in getattr(record, "boxes", ()):
            if not getattr(box, "crowd", False):
                instances[int(box.cls)] += 1
    if rule.kind == "fixed":
        assert rule.per_class is not None
        take = [min(len(rows), rule.per_class) for rows in rows_of]
        background_take = min(len(background_rows), rule.per_class)
    elif rule.kind == "auto":
        quotas = plan_quotas(records, names, size=size, balance=balance, background_share=background_share, seed=seed)
        take = [min(len(rows), max(POOL_FACTOR * quotas.get(c, 0), POOL_MIN)) for c, rows in enumerate(rows_of)]
        background_take = min(len(background_rows), max(POOL_FACTOR * quotas.get(None, 0), POOL_MIN))
    else:
        take = [len(rows) for rows in rows_of]
        background_take = len(background_rows)
    chosen = np.zeros(len(records), dtype=bool)
    for c, rows in enumerate(rows_of):
        if take[c] >= len(rows):
            chosen[rows] = True
        elif take[c] > 0:
            order = np.random.default_rng(pool_seed(seed, names[c])).permutation(len(rows))
            chosen[np.asarray(rows, dtype=np.int64)[order[:take[c]]]] = True
    if background_take >= len(background_rows):
        chosen[background_rows] = True
    elif background_take > 0:
        order = np.random.default_rng(pool_seed(seed, None)).permutation(len(background_rows))
        chosen[np.asarray(background_rows, dtype=np.int64)[order[:background_take]]] = True
    return ObjectPool(rule=rule, background_share=background_share, rows=np.flatnonzero(chosen), names=names,
                      class_images=[len(rows) for rows in rows_of],
                      class_pooled=[int(chosen[rows].sum()) for rows in rows_of],
                      background_images=len(background_rows), background_pooled=background_take,
                      class_instances=instances, images=len(records))
