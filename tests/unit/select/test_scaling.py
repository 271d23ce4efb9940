"""Selection at scale (speed benchmark, issue 5): the O(n)-memory and O(n log n) rewrites give the
same bits as the straightforward formulas they replaced."""
from __future__ import annotations

import tracemalloc

import numpy as np

from repcurate.select.geometry import NORMALIZE_BLOCK_ROWS, l2_normalize, nearest_distances, neighbour_distances
from repcurate.select.selection import (
    NEAR_DUPLICATE_NN_FRACTION,
    NEAR_DUPLICATE_SAMPLE,
    OUTLIER_NEIGHBOURS,
    SelectionConfig,
    _coverage_stats,
    class_members,
    near_duplicate_threshold,
    typical_neighbour_distance,
)


def _one_shot_normalize(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def test_blocked_l2_normalize_is_bitwise_the_one_shot_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * NORMALIZE_BLOCK_ROWS + 123, 17)).astype(np.float32)
    x[5] = 0.0
    np.testing.assert_array_equal(l2_normalize(x), _one_shot_normalize(x))
    as_float64_fortran = np.asfortranarray(x.astype(np.float64))
    np.testing.assert_array_equal(l2_normalize(as_float64_fortran), _one_shot_normalize(as_float64_fortran))
    assert l2_normalize(np.zeros((0, 4), np.float32)).shape == (0, 4)


def test_l2_normalize_allocates_only_its_result() -> None:
    x = np.random.default_rng(1).normal(size=(100_000, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = l2_normalize(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes * 1.2  # the one-shot formula peaked at 3x (x*x, the norms' divide, the result)


def test_class_members_matches_per_class_masks() -> None:
    rng = np.random.default_rng(2)
    labels = [None if v == 0 else f"c{v}" for v in rng.integers(0, 7, size=5000)]
    members = class_members(labels)
    assert list(members) == sorted(set(labels), key=lambda lab: "" if lab is None else lab)
    for label, rows in members.items():
        expected = np.array([i for i, lab in enumerate(labels) if lab == label], dtype=np.int64)
        assert rows.dtype == np.int64
        np.testing.assert_array_equal(rows, expected)
    assert class_members([]) == {}


def test_coverage_per_class_matches_masks() -> None:
    rng = np.random.default_rng(3)
    x = l2_normalize(rng.normal(size=(3000, 8)))
    labels = [None if v == 0 else str(v) for v in rng.integers(0, 5, size=3000)]
    chosen = sorted(rng.choice(3000, 40, replace=False).tolist())
    stats = _coverage_stats(x, class_members(labels), chosen)
    distances = nearest_distances(x, x[chosen], k=1)[0][:, 0].astype(np.float64)
    for label in set(labels):
        d = distances[np.array([lab == label for lab in labels])]
        key = "null" if label is None else label
        assert stats["per_class"][key] == {"mean": round(float(d.mean()), 6), "max": round(float(d.max()), 6)}
    assert stats["mean"] == round(float(distances.mean()), 6)


def test_near_duplicate_threshold_samples_row_numbers_like_the_copy_did() -> None:
    rng = np.random.default_rng(4)
    x = l2_normalize(rng.normal(size=(NEAR_DUPLICATE_SAMPLE + 900, 6)))
    eligible = rng.random(x.shape[0]) < 0.9
    config = SelectionConfig(near_duplicate=10.0, seed=7)
    # What it computed before: a copy of every eligible row, then a seeded sample of that copy.
    xe = x[eligible]
    xe = xe[np.sort(np.random.default_rng(config.seed).choice(xe.shape[0], NEAR_DUPLICATE_SAMPLE, replace=False))]
    typical = round(float(np.median(neighbour_distances(xe, seed=config.seed)[:, OUTLIER_NEIGHBOURS - 1])), 6)
    measured = typical_neighbour_distance(x, np.flatnonzero(eligible), seed=config.seed)
    assert near_duplicate_threshold(config.near_duplicate, measured) == NEAR_DUPLICATE_NN_FRACTION * typical


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim))
    return l2_normalize(centres[rng.integers(0, 6, n)] + 0.3 * rng.normal(size=(n, dim)))


def test_small_classes_run_faiss_on_one_thread_with_the_same_picks(monkeypatch) -> None:
    import faiss

    from repcurate.select import strategies

    x = _clustered(3000, 32, seed=5)
    eligible = np.ones(len(x), dtype=bool)
    threads = faiss.omp_get_max_threads()
    seen: list[int] = []
    original = strategies.REGISTRY["kmeans"]

    def spy(*args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return original(*args, **kwargs)

    monkeypatch.setitem(strategies.REGISTRY, "kmeans", spy)
    results = {}
    for name, limit in (("single", 1 << 62), ("default", 0)):
        monkeypatch.setattr(strategies, "FAISS_SINGLE_THREAD_WORK", limit)
        results[name] = {s: strategies.pick(s, x, 20, seed=1, eligible=eligible, near_duplicate=0.05)
                         for s in strategies.STRATEGIES}
        assert faiss.omp_get_max_threads() == threads  # restored
    assert seen == [1, threads]
    assert results["single"] == results["default"]


def test_thread_setting_is_restored_when_a_strategy_raises(monkeypatch) -> None:
    import faiss

    from repcurate.select import strategies

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    threads = faiss.omp_get_max_threads()
    monkeypatch.setattr(strategies, "kcenter_fill", boom)
    try:
        strategies.pick("kcenter", _clustered(50, 4, seed=6), 3, seed=0, eligible=np.ones(50, bool), near_duplicate=0.0)
    except RuntimeError:
        pass
    assert faiss.omp_get_max_threads() == threads
