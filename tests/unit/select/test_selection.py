"""The selection pipeline on real data (scikit-learn digits as 64-d embeddings)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repcurate.select.geometry import l2_normalize, mmd_rbf, rbf_bandwidth
from repcurate.select.selection import (
    DEFAULT_NEAR_DUPLICATE,
    DEFAULT_OUTLIER_Z,
    NEAR_DUPLICATE_NN_FRACTION,
    STRATEGIES,
    SelectionConfig,
    class_seed,
    exact_duplicate_map,
    near_duplicate_threshold,
    select_representatives,
    typical_neighbour_distance,
)


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.data.astype(np.float32), data.target


def fingerprints(n: int) -> list[str]:
    return [f"sha-{i:05d}" for i in range(n)]


def far_image() -> np.ndarray:
    """A one-hot at pixel 0, which is blank in every digit: a far outlier after normalisation."""
    far = np.zeros((1, 64), dtype=np.float32)
    far[0, 0] = 16.0
    return far


def test_exact_duplicate_map_points_to_first_occurrence() -> None:
    assert exact_duplicate_map(["a", "b", "a", "c", "b", "a"]) == {2: 0, 4: 1, 5: 0}
    assert exact_duplicate_map(["x", "y"]) == {}


def test_class_seed_is_stable_and_differs_by_label() -> None:
    assert class_seed(0, "cat") == class_seed(0, "cat")
    assert class_seed(0, "cat") != class_seed(0, "dog")
    assert class_seed(0, "cat") != class_seed(1, "cat")
    assert class_seed(0, None) != class_seed(0, "")
    assert 0 <= class_seed(123, None) < 2**31 - 1


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="size"):
        SelectionConfig(size=0)
    with pytest.raises(ValueError, match="balance"):
        SelectionConfig(balance="equal")
    with pytest.raises(ValueError, match="strategy"):
        SelectionConfig(strategy="herding")
    with pytest.raises(ValueError, match="near_duplicate"):
        SelectionConfig(near_duplicate=-0.1)
    assert SelectionConfig().to_dict() == {"size": 300, "balance": "uniform", "strategy": "kmeans", "seed": 0,
                                           "include_outliers": False, "outlier_z": DEFAULT_OUTLIER_Z,
                                           "near_duplicate_distance": DEFAULT_NEAR_DUPLICATE}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exact_duplicates_are_never_both_selected(strategy: str) -> None:
    x, y = digits()
    base = x[:200]
    copies = base[:40] + np.float32(0.5)  # same files (same fingerprint), slightly different decode
    embeddings = np.vstack([base, copies])
    labels = [str(v) for v in y[:200]] + [str(v) for v in y[:40]]
    fps = fingerprints(200) + fingerprints(40)
    selection = select_representatives(embeddings, labels, fps, SelectionConfig(size=150, strategy=strategy))
    assert selection.exact_duplicates == {200 + i: i for i in range(40)}
    assert len(selection.indices) == 150
    assert len(set(selection.indices)) == 150
    assert all(i < 200 for i in selection.indices)
    assert len({fps[i] for i in selection.indices}) == 150


@pytest.mark.parametrize("strategy", ["kmeans", "kcenter"])
def test_planted_far_outlier_is_left_out_unless_included(strategy: str) -> None:
    x, y = digits()
    embeddings = np.vstack([x[:400], far_image()])
    labels = [str(v) for v in y[:400]] + ["3"]
    fps = fingerprints(401)
    excluded = select_representatives(embeddings, labels, fps, SelectionConfig(size=40, strategy=strategy))
    assert 400 in excluded.outliers
    assert 400 not in excluded.indices
    assert len(excluded.indices) == 40
    included = select_representatives(embeddings, labels, fps,
                                      SelectionConfig(size=40, strategy=strategy, include_outliers=True))
    assert included.outliers == []
    assert 400 in included.indices  # the farthest image of class 3: its own cluster / first k-center pick


def test_outliers_are_admitted_when_a_class_has_nothing_else() -> None:
    x, y = digits()
    threes = x[y == 3][:8]
    embeddings = np.vstack([x[y == 1][:100], threes, far_image(), far_image()[:, ::-1]])
    labels = ["1"] * 100 + ["3"] * 10
    selection = select_representatives(embeddings, labels, fingerprints(110), SelectionConfig(size=20))
    assert {108, 109} <= set(selection.outliers)
    # class 3 is asked for 10 and has 8 inliers: its outliers fill the quota instead of class 1
    assert selection.selected_per_class == {"1": 10, "3": 10}
    assert set(range(100, 110)) <= set(selection.indices)


LONG_TAIL = {0: 170, 1: 120, 2: 80, 3: 50, 4: 30, 5: 20, 6: 12, 7: 8, 8: 5, 9: 3}


def long_tailed() -> tuple[np.ndarray, list[str]]:
    x, y = digits()
    rows = np.concatenate([np.flatnonzero(y == d)[:count] for d, count in LONG_TAIL.items()])
    return x[rows], [str(v) for v in y[rows]]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_uniform_quotas_on_long_tailed_digits(strategy: str) -> None:
    embeddings, labels = long_tailed()
    selection = select_representatives(embeddings, labels, fingerprints(len(labels)),
                                       SelectionConfig(size=100, strategy=strategy))
    # each class is asked for 10; classes 7, 8, 9 give all (16) and 0-6 share the other 84
    expected = {"0": 12, "1": 12, "2": 12, "3": 12, "4": 12, "5": 12, "6": 12, "7": 8, "8": 5, "9": 3}
    assert selection.selected_per_class == expected
    assert [(q.label, q.available, q.requested, q.quota) for q in selection.quotas] == [
        (str(d), LONG_TAIL[d], 10, expected[str(d)]) for d in range(10)]
    assert [q.label for q in selection.quotas if q.unmet] == ["7", "8", "9"]
    assert len(selection.indices) == 100 == len(set(selection.indices))
    counts = {str(d): 0 for d in range(10)}
    for i in selection.indices:
        counts[labels[i]] += 1
    assert counts == expected


def test_proportional_quotas_on_long_tailed_digits() -> None:
    embeddings, labels = long_tailed()
    selection = select_representatives(embeddings, labels, fingerprints(len(labels)),
                                       SelectionConfig(size=50, balance="proportional"))
    # 50 · counts / 498, largest remainder
    assert selection.selected_per_class == {"0": 17, "1": 12, "2": 8, "3": 5, "4": 3, "5": 2, "6": 1, "7": 1,
                                            "8": 1, "9": 0}
    assert len(selection.indices) == 50


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_size_smaller_than_the_number_of_classes(strategy: str) -> None:
    x, y = digits()
    labels = [str(v) for v in y[:500]]
    selection = select_representatives(x[:500], labels, fingerprints(500), SelectionConfig(size=4, strategy=strategy))
    assert len(selection.indices) == 4
    assert sorted(labels[i] for i in selection.indices) == ["0", "1", "2", "3"]
    assert selection.selected_per_class == {str(d): int(d < 4) for d in range(10)}


def test_near_duplicate_shortfall_is_given_to_other_classes() -> None:
    x, y = digits()
    rng = np.random.default_rng(0)
    fours = x[y == 4][:40]
    # three of the forty fours are also present as four re-encoded copies each (different files)
    copies = np.repeat(fours[:3], 4, axis=0) * (1 + rng.normal(scale=1e-4, size=(12, 64))).astype(np.float32)
    embeddings = np.vstack([fours, copies, x[y == 7][:150]])
    labels = ["4"] * 52 + ["7"] * 150
    selection = select_representatives(embeddings, labels, fingerprints(202), SelectionConfig(size=100))
    # class 4 is asked for 50 and has 52 files but only 40 distinct images: it gives 40, class 7 takes 60
    assert selection.selected_per_class == {"4": 40, "7": 60}
    assert len(selection.indices) == 100 == len(set(selection.indices))
    groups = [i % 40 if i < 40 else (i - 40) // 4 for i in selection.indices if i < 52]
    assert sorted(groups) == list(range(40))
    quotas = {q.label: (q.available, q.requested, q.quota) for q in selection.quotas}
    assert quotas == {"4": (40, 50, 40), "7": (150, 50, 60)}


def test_kmeans_covers_digits_better_than_random_sets() -> None:
    x, y = digits()
    labels = [str(v) for v in y]
    selection = select_representatives(x, labels, fingerprints(len(labels)), SelectionConfig(size=100))
    coverage = selection.coverage
    curated, random = coverage["curated"], coverage["random"]
    assert random["draws"] == 5
    assert curated["mean"] < random["mean"]["mean"] - 3 * random["mean"]["std"]
    assert curated["mean"] < 0.9 * random["mean"]["mean"]
    # the reported metric is the mean distance of every image to its nearest selected image
    z = l2_normalize(x).astype(np.float64)
    chosen = z[selection.indices]
    squared = (z**2).sum(axis=1)[:, None] + (chosen**2).sum(axis=1)[None, :] - 2.0 * z @ chosen.T
    nearest = np.sqrt(np.maximum(squared, 0.0)).min(axis=1)
    assert curated["mean"] == pytest.approx(nearest.mean(), abs=1e-5)
    assert curated["max"] == pytest.approx(nearest.max(), abs=1e-5)
    assert set(curated["per_class"]) == {str(d) for d in range(10)}
    assert curated["per_class"]["3"]["mean"] == pytest.approx(nearest[y == 3].mean(), abs=1e-5)


def domain_split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = digits()
    perm = np.random.default_rng(1).permutation(x.shape[0])
    train, held = perm[:1200], perm[1200:]
    return x[train], y[train], x[held][y[held] < 5]


@pytest.mark.parametrize("strategy", ["kmeans", "random"])
def test_domain_matching_towards_a_target_of_digits_0_to_4(strategy: str) -> None:
    train, train_digits, target = domain_split()
    labels: list[str | None] = [None] * train.shape[0]
    config = SelectionConfig(size=60, strategy=strategy)
    matched = select_representatives(train, labels, fingerprints(train.shape[0]), config, target_embeddings=target)
    plain = select_representatives(train, labels, fingerprints(train.shape[0]), config)
    report = matched.domain_match
    assert report is not None and plain.domain_match is None
    assert report["target_images"] == target.shape[0]
    assert report["mmd_curated"] < report["mmd_random"]["mean"] - report["mmd_random"]["std"]
    share = np.mean(train_digits[matched.indices] < 5)
    assert share >= 0.65
    assert share > np.mean(train_digits[plain.indices] < 5) + 0.1
    # the reported MMD is the statistic recomputed from the returned indices
    z, t = l2_normalize(train), l2_normalize(target)
    assert report["bandwidth"] == pytest.approx(rbf_bandwidth(z[matched.indices], t, seed=0), abs=1e-6)
    assert report["mmd_curated"] == pytest.approx(mmd_rbf(z[matched.indices], t, bandwidth=report["bandwidth"]),
                                                  abs=1e-5)
    # unlabelled rows form one "null" class in the report
    assert matched.quotas[0].label is None and matched.selected_per_class == {None: 60}
    assert set(matched.coverage["curated"]["per_class"]) == {"null"}


def test_mixed_labelled_and_unlabelled_rows() -> None:
    x, y = digits()
    labels: list[str | None] = [None if v >= 5 else str(v) for v in y[:300]]
    selection = select_representatives(x[:300], labels, fingerprints(300), SelectionConfig(size=30))
    assert selection.selected_per_class == {None: 5, "0": 5, "1": 5, "2": 5, "3": 5, "4": 5}
    assert set(selection.coverage["curated"]["per_class"]) == {"null", "0", "1", "2", "3", "4"}
    assert sum(labels[i] is None for i in selection.indices) == 5


@pytest.mark.usefixtures("faiss_default_threads")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_runs_give_identical_selections(strategy: str) -> None:
    train, _, target = domain_split()
    train = train[:600]
    labels = [str(i % 3) for i in range(train.shape[0])]
    config = SelectionConfig(size=45, strategy=strategy, seed=7)
    first = select_representatives(train, labels, fingerprints(train.shape[0]), config, target_embeddings=target)
    second = select_representatives(train, labels, fingerprints(train.shape[0]), config, target_embeddings=target)
    assert first.indices == second.indices
    assert first.coverage == second.coverage
    assert first.domain_match == second.domain_match
    other_seed = select_representatives(train, labels, fingerprints(train.shape[0]),
                                        SelectionConfig(size=45, strategy=strategy, seed=8), target_embeddings=target)
    if strategy != "kcenter":  # k-center is deterministic whatever the seed
        assert other_seed.indices != first.indices


def test_a_class_made_of_near_copies_keeps_its_near_duplicate_check() -> None:
    """Every image has one re-encoded copy: the adaptive threshold must not collapse to zero."""
    x, y = digits()
    fours = x[y == 4][:30]
    copies = fours + np.random.default_rng(0).normal(0.0, 0.02, fours.shape).astype(np.float32)
    embeddings = np.vstack([fours, copies])
    selection = select_representatives(embeddings, ["4"] * 60, fingerprints(60),
                                       SelectionConfig(size=40, strategy="kmeans"))
    originals = {i % 30 for i in selection.indices}
    assert len(selection.indices) == len(originals) <= 30
    assert selection.quotas[0].requested == 40 and selection.quotas[0].unmet


def test_near_duplicate_rule_is_one_function_and_the_selection_reports_what_it_used() -> None:
    """The rule ``check`` reuses: the cap, shrunk to a quarter of the typical 5-NN distance when crowded."""
    assert near_duplicate_threshold(0.1, None) == 0.1
    assert near_duplicate_threshold(0.1, 1.0) == 0.1
    assert near_duplicate_threshold(0.1, 0.2) == NEAR_DUPLICATE_NN_FRACTION * 0.2
    x, y = digits()
    crowded = x / 16.0 + 40.0  # every image near one point: unit-normalised, they crowd together
    labels = [str(v) for v in y]
    config = SelectionConfig(size=100)
    selection = select_representatives(crowded, labels, fingerprints(len(y)), config)
    typical = typical_neighbour_distance(l2_normalize(crowded), np.arange(len(y)), seed=config.seed)
    assert selection.typical_distance == typical
    assert selection.near_duplicate == near_duplicate_threshold(config.near_duplicate, typical) < config.near_duplicate
    assert selection.near_duplicate_record() == {"effective_near_duplicate_distance": selection.near_duplicate,
                                                 "typical_neighbour_distance": typical}
    chosen = l2_normalize(crowded)[selection.indices]
    gaps = np.linalg.norm(chosen[:, None] - chosen[None], axis=-1)[np.triu_indices(len(chosen), k=1)]
    assert gaps.min() >= selection.near_duplicate * 0.999


def test_a_class_made_only_of_other_classes_images_is_still_reported() -> None:
    """Class "z" holds copies (same content) of class "0"'s files: it has nothing eligible and used to vanish
    from the quotas (and so from the manifest's classes, unmet_quotas and empty_classes)."""
    x, y = digits()
    keep = np.flatnonzero(y < 3)[:90]
    zeros = keep[y[keep] == 0][:5]
    embeddings = np.vstack([x[keep], x[zeros]])
    labels = [str(v) for v in y[keep]] + ["z"] * len(zeros)
    fps = fingerprints(len(keep)) + [f"sha-{int(np.flatnonzero(keep == i)[0]):05d}" for i in zeros]
    selection = select_representatives(embeddings, labels, fps, SelectionConfig(size=12))
    assert [q.label for q in selection.quotas] == ["0", "1", "2", "z"]
    z = selection.quotas[-1]
    assert (z.available, z.requested, z.quota) == (0, 0, 0)
    assert z.reason is not None and "all 5 images are exact duplicates of other classes' images" in z.reason
    assert z.to_dict()["reason"] == z.reason and "reason" not in selection.quotas[0].to_dict()
    assert selection.selected_per_class["z"] == 0 and len(selection.indices) == 12
