"""Embedding geometry: normalisation, exact nearest neighbours, outlier scores, robust z, MMD."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repcurate.select.geometry import (
    MAD_TO_SIGMA,
    OUTLIER_NEIGHBOURS,
    l2_normalize,
    mmd_rbf,
    nearest_distances,
    outlier_scores,
    pca_2d,
    rbf_bandwidth,
    robust_z,
)


def digits_split() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return l2_normalize(data.data), data.target


def test_l2_normalize_unit_rows_zero_rows_stay_zero() -> None:
    x = np.array([[3, 4], [0, 0], [0, -2]], dtype=np.int64)
    out = l2_normalize(x)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], rtol=0, atol=1e-7)
    fortran = np.asfortranarray(np.random.default_rng(0).normal(size=(20, 5)))
    np.testing.assert_allclose(np.linalg.norm(l2_normalize(fortran), axis=1), 1.0, atol=1e-6)


def test_nearest_distances_match_brute_force_on_digits() -> None:
    x, _ = digits_split()
    queries, base = x[:200], x[200:900]
    distances, ids = nearest_distances(queries, base, k=3)
    assert distances.shape == ids.shape == (200, 3)
    brute = np.linalg.norm(queries[:, None, :].astype(np.float64) - base[None, :, :], axis=2)
    expected = np.sort(brute, axis=1)[:, :3]
    np.testing.assert_allclose(distances, expected, atol=1e-3)
    np.testing.assert_allclose(brute[np.arange(200), ids[:, 0]], expected[:, 0], atol=1e-3)


def test_nearest_distances_exact_small_case_and_k_capped_by_base() -> None:
    base = np.array([[0, 0], [3, 4]], dtype=np.float32)
    distances, ids = nearest_distances(np.array([[0, 0], [3, 0]], dtype=np.float32), base, k=5)
    assert ids.tolist() == [[0, 1], [0, 1]]
    np.testing.assert_allclose(distances, [[0.0, 5.0], [3.0, 4.0]], atol=1e-6)  # (3,0): 3 to origin, 4 to (3,4)


def test_outlier_scores_are_the_fifth_nearest_other_row() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    scores = outlier_scores(x, seed=0)
    brute = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    np.fill_diagonal(brute, np.inf)
    np.testing.assert_allclose(scores, np.sort(brute, axis=1)[:, OUTLIER_NEIGHBOURS - 1], rtol=1e-4)
    assert scores.dtype == np.float64


def test_outlier_scores_of_tiny_classes_are_zero() -> None:
    x = np.random.default_rng(0).normal(size=(OUTLIER_NEIGHBOURS + 1, 3))
    assert outlier_scores(x, seed=0).tolist() == [0.0] * (OUTLIER_NEIGHBOURS + 1)


def test_outlier_scores_flag_a_planted_far_point_in_digits() -> None:
    x, y = digits_split()
    threes = x[y == 3]
    far = np.zeros((1, 64), dtype=np.float32)
    far[0, 0] = 1.0  # pixel 0 is blank in every digit: as far as a unit vector can be from them
    data = np.vstack([threes[:90], far, threes[90:]])
    z = robust_z(outlier_scores(data, seed=0))
    assert int(np.argmax(z)) == 90
    assert z[90] > 5.0
    assert np.sort(z)[-2] < z[90] / 2


def test_outlier_scores_with_a_reference_sample_still_flag_the_far_point(monkeypatch: pytest.MonkeyPatch) -> None:
    import repcurate.select.geometry as geometry

    monkeypatch.setattr(geometry, "OUTLIER_REFERENCE_POINTS", 200)
    x, _ = digits_split()
    far = np.zeros((1, 64), dtype=np.float32)
    far[0, 0] = 1.0
    data = np.vstack([x[:600], far])
    scores = geometry.outlier_scores(data, seed=1)
    assert scores.shape == (601,)
    assert int(np.argmax(robust_z(scores))) == 600
    np.testing.assert_array_equal(scores, geometry.outlier_scores(data, seed=1))


def test_robust_z_exact_values_and_zero_spread() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD median(|-2, -1, 0, 1, 97|) = 1
    np.testing.assert_allclose(robust_z(scores), (scores - 3.0) / MAD_TO_SIGMA)
    assert robust_z(np.full(7, 2.5)).tolist() == [0.0] * 7
    # more than half identical: MAD is zero, no point is called an outlier
    assert robust_z(np.array([1.0, 1.0, 1.0, 9.0])).tolist() == [0.0] * 4


def test_rbf_bandwidth_is_the_median_pairwise_distance() -> None:
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    y = np.array([[0.0, 0.0]])
    # pairwise distances 5, 0, 5 → median 5
    assert rbf_bandwidth(x, y, seed=0) == pytest.approx(5.0)
    assert rbf_bandwidth(np.ones((3, 2)), np.ones((2, 2)), seed=0) == 1.0
    big = np.random.default_rng(0).normal(size=(1500, 8))
    a = rbf_bandwidth(big[:800], big[800:], seed=3, max_points=300)
    assert a == rbf_bandwidth(big[:800], big[800:], seed=3, max_points=300)
    assert a == pytest.approx(np.sqrt(2 * 8), rel=0.1)  # E|x - y|² = 2d for standard normals


def test_mmd_near_zero_for_same_distribution_and_positive_for_shifted() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    shifted = rng.normal(size=(300, 8)) + 0.75
    bandwidth = rbf_bandwidth(a, b, seed=0)
    same = mmd_rbf(a, b, bandwidth=bandwidth)
    assert abs(same) < 0.01
    assert mmd_rbf(a, shifted, bandwidth=bandwidth) > 0.15
    assert mmd_rbf(a, b, bandwidth=bandwidth) == pytest.approx(mmd_rbf(b, a, bandwidth=bandwidth), abs=1e-12)


def test_mmd_on_digits_separates_classes() -> None:
    x, y = digits_split()
    low, high = x[y < 5], x[y >= 5]
    rng = np.random.default_rng(1)
    perm = rng.permutation(low.shape[0])
    first, second = low[perm[:400]], low[perm[400:800]]
    bandwidth = rbf_bandwidth(first, second, seed=0)
    same = mmd_rbf(first, second, bandwidth=bandwidth)
    different = mmd_rbf(first, high[:400], bandwidth=bandwidth)
    assert abs(same) < 0.005
    assert different > 0.02
    assert different > 10 * abs(same)


def test_mmd_exact_two_point_case_and_too_few_points() -> None:
    x = np.array([[0.0], [0.0]])
    y = np.array([[1.0], [1.0]])
    # k(x, x') = k(y, y') = 1, k(x, y) = exp(-1/2): MMD² = 2 - 2·exp(-1/2)
    assert mmd_rbf(x, y, bandwidth=1.0) == pytest.approx(2 - 2 * np.exp(-0.5))
    with pytest.raises(ValueError, match="two points"):
        mmd_rbf(x[:1], y, bandwidth=1.0)


def test_pca_2d_of_few_rows_in_many_dimensions_equals_the_covariance_components():
    """A class of 20 images with 1,280-d embeddings takes the n×n Gram path; it must give the covariance
    eigendecomposition's coordinates (signs fixed by the largest loading) and variance ratios."""
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(20, 3)) * [3.0, 1.5, 0.5]) @ rng.normal(size=(3, 1280)) + 0.05 * rng.normal(size=(20, 1280))
    xy, ratios = pca_2d(x)
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / (len(x) - 1))
    for column in range(2):
        vector = vectors[:, -1 - column]
        vector = vector * (1.0 if vector[np.argmax(np.abs(vector))] >= 0 else -1.0)
        np.testing.assert_allclose(xy[:, column], centred @ vector, atol=1e-5)
        assert ratios[column] == pytest.approx(values[-1 - column] / values.sum(), abs=1e-6)
    assert np.array_equal(pca_2d(x)[0], xy)
