"""Selection strategies inside one class: k-means medoids, greedy k-center, random."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repcurate.select.geometry import l2_normalize
from repcurate.select.strategies import STRATEGIES, kcenter_fill, kmeans_pick, pick, random_pick

NEAR = 0.05


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return l2_normalize(data.data), data.target


def clusters(n_clusters: int = 5, per_cluster: int = 40, dim: int = 16, noise: float = 0.01,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tight, well-separated clusters on the unit sphere; returns (x, cluster id per row)."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(n_clusters, dim)))
    ids = np.repeat(np.arange(n_clusters), per_cluster)
    x = l2_normalize(centres[ids] + rng.normal(scale=noise, size=(ids.size, dim)))
    order = rng.permutation(ids.size)  # interleave so that row order says nothing about clusters
    return x[order], ids[order]


def near_duplicate_groups(groups: int = 20, copies: int = 4, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``groups`` distinct digit images, each present ``copies`` times with tiny noise."""
    x, _ = digits()
    rng = np.random.default_rng(seed)
    base = x[rng.choice(x.shape[0], groups, replace=False)]
    group = np.tile(np.arange(groups), copies)
    noisy = l2_normalize(base[group] + rng.normal(scale=1e-3, size=(group.size, x.shape[1])))
    return noisy, group


def all_eligible(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_k_distinct_eligible_picks_on_digits(strategy: str) -> None:
    x, _ = digits()
    eligible = np.random.default_rng(1).random(x.shape[0]) < 0.5
    picked = pick(strategy, x, 30, seed=0, eligible=eligible, near_duplicate=NEAR)
    assert len(picked) == 30
    assert len(set(picked)) == 30
    assert all(isinstance(i, int) for i in picked)
    assert eligible[picked].all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_asking_for_more_than_eligible_returns_every_eligible_row(strategy: str) -> None:
    x, _ = digits()
    eligible = np.zeros(x.shape[0], dtype=bool)
    eligible[[3, 50, 700, 1500]] = True
    picked = pick(strategy, x, 10, seed=0, eligible=eligible, near_duplicate=NEAR)
    assert sorted(picked) == [3, 50, 700, 1500]
    assert pick(strategy, x, 10, seed=0, eligible=np.zeros(x.shape[0], dtype=bool), near_duplicate=NEAR) == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_zero_picks_gives_nothing(strategy: str) -> None:
    # A class whose quota is 0 (size smaller than the number of classes) must contribute nothing.
    x, _ = digits()
    assert pick(strategy, x[:100], 0, seed=0, eligible=all_eligible(100), near_duplicate=NEAR) == []


@pytest.mark.parametrize("strategy", ["kmeans", "kcenter"])
def test_one_pick_per_well_separated_cluster(strategy: str) -> None:
    x, ids = clusters()
    picked = pick(strategy, x, 5, seed=0, eligible=all_eligible(x.shape[0]), near_duplicate=NEAR)
    assert sorted(ids[picked].tolist()) == [0, 1, 2, 3, 4]


def test_kmeans_picks_the_medoid_of_each_cluster() -> None:
    x, ids = clusters(seed=4)
    picked = kmeans_pick(x, 5, seed=0, eligible=all_eligible(x.shape[0]), near_duplicate=NEAR)
    for row in picked:
        members = x[ids == ids[row]]
        centre = members.mean(axis=0)
        nearest = members[np.argmin(np.linalg.norm(members - centre, axis=1))]
        np.testing.assert_array_equal(x[row], nearest)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_near_duplicates_are_never_picked_together(strategy: str) -> None:
    x, group = near_duplicate_groups(groups=20, copies=4)
    eligible = all_eligible(x.shape[0])
    picked = pick(strategy, x, 20, seed=0, eligible=eligible, near_duplicate=NEAR)
    assert sorted(group[picked].tolist()) == list(range(20))
    # Asking for more than there are distinct images stops at one per group.
    more = pick(strategy, x, 35, seed=0, eligible=eligible, near_duplicate=NEAR)
    assert sorted(group[more].tolist()) == list(range(20))
    chosen = x[more]
    distances = np.linalg.norm(chosen[:, None, :] - chosen[None, :, :], axis=2)
    assert distances[~np.eye(len(more), dtype=bool)].min() >= NEAR


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_near_duplicate_threshold_zero_allows_close_copies(strategy: str) -> None:
    x, _group = near_duplicate_groups(groups=20, copies=4)
    picked = pick(strategy, x, 35, seed=0, eligible=all_eligible(x.shape[0]), near_duplicate=0.0)
    assert len(set(picked)) == 35  # 20 distinct images: some are picked with their copies


@pytest.mark.usefixtures("faiss_default_threads")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_gives_identical_picks(strategy: str) -> None:
    x, _ = digits()
    eligible = all_eligible(x.shape[0])
    first = pick(strategy, x, 40, seed=11, eligible=eligible, near_duplicate=NEAR)
    second = pick(strategy, x, 40, seed=11, eligible=eligible, near_duplicate=NEAR)
    assert first == second


def test_random_depends_on_seed() -> None:
    x, _ = digits()
    eligible = all_eligible(x.shape[0])
    a = random_pick(x, 40, seed=0, eligible=eligible, near_duplicate=NEAR)
    b = random_pick(x, 40, seed=1, eligible=eligible, near_duplicate=NEAR)
    assert a != b
    assert len(set(a) & set(b)) < 10


def test_unknown_strategy_is_rejected() -> None:
    x, _ = digits()
    with pytest.raises(ValueError, match="unknown strategy"):
        pick("farthest", x, 3, seed=0, eligible=all_eligible(x.shape[0]), near_duplicate=NEAR)


def two_regions(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Digits 0 (rows marked True) and digits 1 (False), 150 each."""
    x, y = digits()
    rows = np.concatenate([np.flatnonzero(y == 0)[:150], np.flatnonzero(y == 1)[:150]])
    return x[rows], y[rows] == 0


@pytest.mark.parametrize("strategy", ["kmeans", "random"])
def test_weights_pull_picks_towards_the_heavy_region(strategy: str) -> None:
    x, heavy = two_regions()
    eligible = all_eligible(x.shape[0])
    unweighted = pick(strategy, x, 20, seed=0, eligible=eligible, near_duplicate=NEAR)
    weights = np.where(heavy, 10.0, 0.1)
    weighted = pick(strategy, x, 20, seed=0, eligible=eligible, near_duplicate=NEAR, weights=weights)
    assert 6 <= heavy[unweighted].sum() <= 14
    assert heavy[weighted].sum() >= 17
    assert len(set(weighted)) == 20


def test_random_with_zero_weights_only_draws_weighted_rows() -> None:
    x, heavy = two_regions()
    weights = heavy.astype(np.float64)  # region 1 has weight 0
    picked = random_pick(x, 30, seed=2, eligible=all_eligible(x.shape[0]), near_duplicate=NEAR, weights=weights)
    assert heavy[picked].all()
    # fewer positive weights than picks: falls back to a uniform draw
    few = np.zeros(x.shape[0])
    few[:3] = 1.0
    picked = random_pick(x, 30, seed=2, eligible=all_eligible(x.shape[0]), near_duplicate=NEAR, weights=few)
    assert len(set(picked)) == 30
    assert 0 < heavy[picked].sum() < 30


def test_kcenter_starts_at_the_row_nearest_the_mean_then_goes_far() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.1, 0.0], [5.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    picked = kcenter_fill(x, 3, eligible=all_eligible(6), picked=[], near_duplicate=NEAR)
    # mean (0.85, 0.5): nearest is row 1 (1, 0); farthest from it is row 4 (5, 0); then row 5 (0, 3).
    assert picked == [1, 4, 5]
    weights = np.array([0, 0, 100, 0, 0, 0], dtype=np.float64) + 1e-9
    assert kcenter_fill(x, 1, eligible=all_eligible(6), picked=[], near_duplicate=NEAR, weights=weights) == [2]


def test_kcenter_extends_an_existing_pick_and_respects_eligibility() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.1, 0.0], [5.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    eligible = np.array([True, True, True, True, False, True])
    assert kcenter_fill(x, 3, eligible=eligible, picked=[0], near_duplicate=NEAR) == [0, 5, 1]
    assert kcenter_fill(x, 2, eligible=eligible, picked=[0, 5], near_duplicate=NEAR) == [0, 5]


def test_kcenter_never_repeats_an_exact_copy_even_without_threshold() -> None:
    x = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    picked = kcenter_fill(x, 3, eligible=all_eligible(3), picked=[], near_duplicate=0.0)
    assert sorted(x[picked].tolist()) == [[0.0, 0.0], [1.0, 0.0]]
