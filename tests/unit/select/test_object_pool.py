"""Candidate pools of annotated datasets, per object class: property tests (hypothesis) — every class present in
the dataset is in the pool, pools are nested in N and in --size, same seed same pool — and the rule's numbers:
rare classes whole, background by its share, the manifest's per-class counts, proportional weights of the dataset."""
from __future__ import annotations

from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcurate.data.annotations import Box
from repcurate.select.object_pool import choose_object_pool, image_classes, plan_quotas
from repcurate.select.object_quotas import ObjectBalance
from repcurate.select.pool import POOL_FACTOR, POOL_MIN, PoolRule

NAMES = ["a", "b", "c", "d", "e"]
SIDES = {"small": 10, "medium": 50, "large": 120}


def _records(images: list[list[tuple[int, str]]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(boxes=tuple(Box(c, 0.0, 0.0, float(SIDES[s]), float(SIDES[s])) for c, s in objects))
            for objects in images]


def _long_tailed(seed: int = 0) -> list[SimpleNamespace]:
    """400 images: class a in most, b in a fifth, c in 6, d in 2 (beside a), e never; 60 background images."""
    rng = np.random.default_rng(seed)
    images: list[list[tuple[int, str]]] = []
    for i in range(340):
        objects = [(0, str(rng.choice(sorted(SIDES))))] * int(rng.integers(1, 3))
        if i % 5 == 0:
            objects.append((1, "medium"))
        if i % 57 == 3:
            objects.append((2, "small"))
        if i in (10, 200):
            objects.append((3, "large"))
        images.append(objects)
    images += [[] for _ in range(60)]
    order = rng.permutation(len(images))
    return _records([images[i] for i in order])


objects = st.tuples(st.integers(0, len(NAMES) - 1), st.sampled_from(sorted(SIDES)))
datasets = st.lists(st.lists(objects, min_size=0, max_size=4), min_size=1, max_size=80)
rules = st.one_of(st.just(PoolRule("auto")), st.integers(1, 12).map(lambda n: PoolRule("fixed", n)))
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _pool(records, rule: PoolRule, *, size: int = 20, seed: int = 0, balance: str = "uniform", share: float = 0.05):
    return choose_object_pool(records, NAMES, rule, size=size, balance=balance, seed=seed, background_share=share)


@PROPERTY
@given(images=datasets, rule=rules, size=st.integers(1, 60), seed=st.integers(0, 5))
def test_every_class_of_the_dataset_is_in_the_pool(images, rule, size, seed) -> None:
    records = _records(images)
    pool = _pool(records, rule, size=size, seed=seed)
    present = set().union(*(image_classes(r) for r in records))
    pooled = set().union(*(image_classes(records[i]) for i in pool.rows))
    assert pooled == present
    assert list(pool.rows) == sorted(set(pool.rows.tolist()))
    assert [pool.class_pooled[c] > 0 for c in range(len(NAMES))] == [c in present for c in range(len(NAMES))]
    if any(not image_classes(r) for r in records):
        assert pool.background_pooled > 0


@PROPERTY
@given(images=datasets, small=st.integers(1, 8), extra=st.integers(0, 8), seed=st.integers(0, 5))
def test_a_smaller_pool_is_nested_in_a_larger_one(images, small, extra, seed) -> None:
    records = _records(images)
    smaller = set(_pool(records, PoolRule("fixed", small), seed=seed).rows.tolist())
    larger = set(_pool(records, PoolRule("fixed", small + extra), seed=seed).rows.tolist())
    assert smaller <= larger
    assert larger <= set(_pool(records, PoolRule("all"), seed=seed).rows.tolist()) == set(range(len(records)))


def test_the_default_pool_is_nested_in_the_set_size() -> None:
    records = _long_tailed()
    pools = [set(_pool(records, PoolRule("auto"), size=size).rows.tolist()) for size in (1, 4, 8, 16, 64, 300)]
    assert all(a <= b for a, b in pairwise(pools))
    assert len(pools[0]) < len(pools[-2]) < len(records)


@PROPERTY
@given(images=datasets, rule=rules, seed=st.integers(0, 5))
def test_same_labels_and_seed_give_the_same_pool(images, rule, seed) -> None:
    records = _records(images)
    first, again = _pool(records, rule, seed=seed), _pool(list(records), rule, seed=seed)
    assert np.array_equal(first.rows, again.rows) and first.class_pooled == again.class_pooled


def test_another_seed_draws_another_pool_of_the_same_sizes() -> None:
    records = _long_tailed()
    first, other = _pool(records, PoolRule("fixed", 20), seed=0), _pool(records, PoolRule("fixed", 20), seed=1)
    assert not np.array_equal(first.rows, other.rows)
    assert first.class_pooled[2:] == other.class_pooled[2:] == [6, 2, 0]  # the rare classes: whole either way


def test_fixed_rule_draws_n_per_class_keeps_rare_classes_whole_and_n_background_images() -> None:
    records = _long_tailed()
    pool = _pool(records, PoolRule("fixed", 20))
    drawn_a = [i for i in pool.rows if 0 in image_classes(records[i])]
    assert pool.class_images == [340, 68, 6, 2, 0]
    assert 20 <= len(drawn_a) == pool.class_pooled[0] < 340  # its 20, and images drawn for b, c, d that hold a
    assert pool.class_pooled[1] >= 20 and pool.class_pooled[2:] == [6, 2, 0]
    objects_pooled = sum(1 for i in pool.rows if image_classes(records[i]))
    assert pool.background_pooled == 20 and pool.rows.size == objects_pooled + 20 and not pool.complete


@pytest.mark.parametrize("size, share", [(8, 0.05), (40, 0.05), (40, 0.5), (100, 0.0)])
def test_auto_rule_is_the_quota_multiple_of_the_object_plan(size, share) -> None:
    records = _long_tailed()
    objects = ObjectBalance.from_records(records, NAMES, background_share=share, seed=0)
    available: dict[str | None, int] = {}
    for label in objects.labels:
        available[label] = available.get(label, 0) + 1
    quota: dict[int | None, int] = {}
    for stratum, planned in objects.plan(available, size, "uniform").items():
        key = None if stratum is None else objects.primary[stratum]
        quota[key] = quota.get(key, 0) + planned
    assert plan_quotas(records, NAMES, size=size, balance="uniform", background_share=share, seed=0) == quota
    pool = _pool(records, PoolRule("auto"), size=size, share=share)
    for c, images in enumerate(pool.class_images):  # its own draw, plus images drawn for other classes holding it
        assert min(images, max(POOL_FACTOR * quota.get(c, 0), POOL_MIN)) <= pool.class_pooled[c] <= images
    assert pool.background_pooled == min(60, max(POOL_FACTOR * quota.get(None, 0), POOL_MIN))
    assert pool.class_pooled[2:] == [6, 2, 0]  # rare classes whole


def test_auto_rule_of_a_large_set_pools_everything() -> None:
    assert _pool(_long_tailed(), PoolRule("auto"), size=300).complete


def test_manifest_section_counts_images_per_object_class_and_background() -> None:
    records = _long_tailed()
    pool = _pool(records, PoolRule("fixed", 20))
    section = pool.manifest_section([f"img{i:03d}.png" for i in pool.rows], seed=0)
    assert section["value"] == 20 and section["files"] == 400 and section["pooled"] == pool.rows.size
    assert section["rule"].startswith("20 per object class") and section["per"].startswith("object class")
    by_label = {c["label"]: (c["files"], c["pool"]) for c in section["classes"]}
    assert by_label == {None: (60, pool.background_pooled), "a": (340, pool.class_pooled[0]),
                        "b": (68, pool.class_pooled[1]), "c": (6, 6), "d": (2, 2)}  # e holds no image: not listed


def test_crowd_only_images_count_for_their_crowd_class() -> None:
    records = [SimpleNamespace(boxes=(Box(4, 0, 0, 9, 9, crowd=True),)), *_records([[(0, "small")]] * 30)]
    pool = _pool(records, PoolRule("fixed", 1))
    assert 0 in pool.rows and pool.class_images[4] == 1 and pool.class_pooled == [1, 0, 0, 0, 1]


def test_proportional_weights_follow_the_dataset_totals_given_for_a_pool() -> None:
    # A pool holding 10 images of a and 10 of b, from a dataset with 900 a and 100 b: proportional shares 9:1.
    records = _records([[(0, "medium")]] * 10 + [[(1, "medium")]] * 10)
    plain = ObjectBalance.from_records(records, NAMES[:2])
    pooled = ObjectBalance.from_records(records, NAMES[:2], class_totals=[900, 100])
    available = {"a:medium": 10, "b:medium": 10}
    assert plain.plan(available, 10, "proportional") == {"a:medium": 5, "b:medium": 5}
    assert pooled.plan(available, 10, "proportional") == {"a:medium": 9, "b:medium": 1}
    assert pooled.plan(available, 10, "uniform") == {"a:medium": 5, "b:medium": 5}
