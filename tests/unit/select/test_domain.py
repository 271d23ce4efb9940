"""Density-ratio weights from a logistic-regression domain classifier."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repcurate.select.domain import WEIGHT_CLIP_QUANTILE, density_ratio_weights
from repcurate.select.geometry import l2_normalize


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = load_digits()
    x, y = l2_normalize(data.data), data.target
    perm = np.random.default_rng(1).permutation(x.shape[0])
    train, held = perm[:1200], perm[1200:]
    target = x[held][y[held] < 5]
    return x[train], y[train], target


def test_weights_favour_training_images_that_look_like_the_target() -> None:
    train, labels, target = split()
    weights = density_ratio_weights(train, target, seed=0)
    assert weights.shape == (train.shape[0],)
    assert weights.dtype == np.float64
    assert np.all(weights > 0)
    assert weights.mean() == np.float64(weights.mean()) and abs(weights.mean() - 1.0) < 1e-12
    in_target = labels < 5
    assert weights[in_target].mean() > 2.5 * weights[~in_target].mean()
    assert weights[in_target].sum() / weights.sum() > 0.7


def test_weights_are_clipped_at_the_quantile_and_deterministic() -> None:
    train, _, target = split()
    weights = density_ratio_weights(train, target, seed=0)
    # the top 1 % (12 of 1200 rows) share the clipped maximum, the 99th percentile
    assert np.count_nonzero(weights == weights.max()) == int((1 - WEIGHT_CLIP_QUANTILE) * weights.size)
    assert weights.max() == pytest.approx(np.quantile(weights, WEIGHT_CLIP_QUANTILE), rel=1e-3)
    np.testing.assert_array_equal(weights, density_ratio_weights(train, target, seed=0))


def test_target_like_training_set_gives_flat_weights() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(size=(400, 6))
    same = density_ratio_weights(train, rng.normal(size=(400, 6)), seed=0)
    shifted = density_ratio_weights(train, rng.normal(size=(400, 6)) + 0.5, seed=0)
    assert same.std() < 0.3
    assert 0.5 < same.min() and same.max() < 2.0
    assert shifted.std() > 3 * same.std()
    # rows on the target's side get the weight
    assert np.corrcoef(shifted, train.sum(axis=1))[0, 1] > 0.8
