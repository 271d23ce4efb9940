"""Object-level quotas: property tests (hypothesis) of the greedy multi-cover plan — evenness, coverage of every
class, background share, supply caps, determinism — and the selection through select_representatives."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcurate.data.annotations import Box
from repcurate.select.object_quotas import ObjectBalance
from repcurate.select.selection import SelectionConfig, select_representatives

NAMES = ["a", "b", "c", "d", "e"]
SIDES = {"small": 10, "medium": 50, "large": 120}


def _records(images: list[list[tuple[int, str]]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(boxes=tuple(Box(c, 0.0, 0.0, float(SIDES[s]), float(SIDES[s])) for c, s in objects))
            for objects in images]


objects = st.tuples(st.integers(0, len(NAMES) - 1), st.sampled_from(sorted(SIDES)))
single_object_images = st.lists(st.lists(objects, min_size=0, max_size=1), min_size=1, max_size=60)
multi_object_images = st.lists(st.lists(objects, min_size=0, max_size=6), min_size=1, max_size=60)
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _available(balance: ObjectBalance) -> dict[str | None, int]:
    available: dict[str | None, int] = {}
    for label in balance.labels:
        available[label] = available.get(label, 0) + 1
    return available


def _per_class(balance: ObjectBalance, plan: dict[str | None, int]) -> np.ndarray:
    """Instances per class of a plan, taking each stratum's first images (exact for one-object images)."""
    covered = np.zeros(len(balance.names), dtype=np.int64)
    for stratum, count in plan.items():
        rows = [i for i, lab in enumerate(balance.labels) if lab == stratum][:count]
        covered += balance.class_counts[rows].sum(axis=0)
    return covered


@PROPERTY
@given(images=single_object_images, size=st.integers(1, 70), seed=st.integers(0, 3))
def test_one_object_per_image_is_water_filled_as_evenly_as_supply_allows(images, size, seed) -> None:
    balance = ObjectBalance.from_records(_records(images), NAMES, background_share=0.0, seed=seed)
    available = _available(balance)
    plan = balance.plan(available, size, "uniform")
    assert all(0 <= plan[s] <= available[s] for s in plan)
    assert sum(plan.values()) == min(size, sum(available.values()))
    covered = _per_class(balance, plan)
    supply = balance.class_counts.sum(axis=0)
    for c in range(len(NAMES)):
        for d in range(len(NAMES)):
            if covered[c] < covered[d] - 1:  # c is more than one instance behind d only when c has nothing left
                assert covered[c] == supply[c], (covered, supply)


@PROPERTY
@given(images=multi_object_images, size=st.integers(1, 70), share=st.sampled_from([0.0, 0.05, 0.1, 0.5]))
def test_every_primary_class_is_covered_and_the_background_share_is_kept(images, size, share) -> None:
    balance = ObjectBalance.from_records(_records(images), NAMES, background_share=share, seed=0)
    available = _available(balance)
    plan = balance.plan(available, size, "uniform")
    background = available.get(None, 0)
    object_supply = sum(n for s, n in available.items() if s is not None)
    assert sum(plan.values()) == min(size, background + object_supply)
    wanted = min(background, round(share * size))
    if object_supply >= size - wanted:
        assert plan.get(None, 0) == wanted
    else:  # object images run out: every one is taken and background images fill the rest
        assert sum(n for s, n in plan.items() if s is not None) == object_supply
    object_images = sum(n for s, n in plan.items() if s is not None)
    primaries = set(balance.primary.values())
    if object_images >= len(NAMES):
        assert {balance.primary[s] for s, n in plan.items() if s is not None and n > 0} == primaries


@PROPERTY
@given(images=multi_object_images, size=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_the_plan_is_deterministic_for_a_seed(images, size, seed) -> None:
    plans = [ObjectBalance.from_records(_records(images), NAMES, seed=seed).quotas(
        _available(ObjectBalance.from_records(_records(images), NAMES)), size, "proportional") for _ in range(2)]
    assert plans[0] == plans[1]


def test_a_long_tailed_dataset_is_balanced_far_better_than_its_frequencies() -> None:
    rng = np.random.default_rng(0)
    frequencies = np.array([0.7, 0.15, 0.08, 0.05, 0.02])
    images = [[(int(rng.choice(5, p=frequencies)), "medium") for _ in range(int(rng.integers(1, 4)))]
              for _ in range(600)] + [[] for _ in range(40)]
    records = _records(images)
    balance = ObjectBalance.from_records(records, NAMES, background_share=0.05, seed=0)
    x = np.random.default_rng(1).normal(size=(len(records), 16)).astype(np.float32)
    fingerprints = [f"{i:032x}" for i in range(len(records))]
    selection = select_representatives(x, balance.labels, fingerprints, SelectionConfig(size=100, seed=0),
                                       quota_rule=balance.quotas)
    assert len(selection.indices) == 100
    report = balance.report(selection.indices)
    selected = np.array([c["instances_selected"] for c in report["classes"]])
    available = np.array([c["instances_available"] for c in report["classes"]])
    assert report["background"]["selected"] == 5
    rare = int(np.argmin(available))
    assert selected[rare] == available[rare] or selected[rare] >= selected.max() // 2
    # The rarest class's share of the set's instances is many times its share of the data.
    assert selected[rare] / selected.sum() > 4 * available[rare] / available.sum()
    images_selected = [c["images_selected"] for c in report["classes"]]
    assert all(n > 0 for n in images_selected)
    assert selection.indices == select_representatives(x, balance.labels, fingerprints, SelectionConfig(size=100, seed=0),
                                                       quota_rule=balance.quotas).indices


def test_background_share_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="background_share"):
        ObjectBalance.from_records(_records([[(0, "small")]]), NAMES, background_share=1.5)
