"""The selection pipeline: eligibility (duplicates, outliers) → quotas → per-class strategy → report."""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from repcurate.options import MAX_COUNT, require_int, require_number, require_seed
from repcurate.select.domain import density_ratio_weights
from repcurate.select.geometry import (
    OUTLIER_NEIGHBOURS,
    l2_normalize,
    mmd_rbf,
    nearest_distances,
    neighbour_distances,
    rbf_bandwidth,
    robust_z,
)
from repcurate.select.quotas import BALANCES, ClassQuota, compute_quotas
from repcurate.select.strategies import REGISTRY as STRATEGY_REGISTRY
from repcurate.select.strategies import STRATEGIES, pick  # noqa: F401 - STRATEGIES re-exported for callers

#: Two images closer than this (Euclidean, unit-normalised embeddings) count as near duplicates;
#: 0.1 ≈ cosine similarity 0.995. Measured with EfficientNet-Lite0: a photo re-saved as JPEG q90 or
#: resized to 90 % lies 0.06–0.10 from its original, distinct photos ≥ 1.2 apart, distinct digits ≥ 0.16.
DEFAULT_NEAR_DUPLICATE = 0.1
#: In feature spaces where images crowd together (small or untrained models, low dimensions), the
#: threshold shrinks to this fraction of the dataset's median distance to the 5th nearest neighbour
#: (not the 1st, which a set full of near copies would drive to zero and so switch the check off).
NEAR_DUPLICATE_NN_FRACTION = 0.25
#: Rows sampled to estimate that typical distance.
NEAR_DUPLICATE_SAMPLE = 2048
#: A robust z-score of the k-NN distance above this marks a far outlier.
DEFAULT_OUTLIER_Z = 5.0
#: Random sets drawn to compare the curated set against (coverage, MMD).
BASELINE_DRAWS = 5
#: Target images used for MMD (kernel matrices grow quadratically).
MMD_MAX_POINTS = 4000


@dataclass(frozen=True)
class SelectionConfig:
    """Validated selection parameters."""

    size: int = 300
    balance: str = "uniform"
    strategy: str = "kmeans"
    seed: int = 0
    include_outliers: bool = False
    outlier_z: float = DEFAULT_OUTLIER_Z
    near_duplicate: float = DEFAULT_NEAR_DUPLICATE

    def __post_init__(self) -> None:
        require_int(self.size, "--size", 1, MAX_COUNT)
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {', '.join(BALANCES)}")
        if self.strategy not in STRATEGY_REGISTRY:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGY_REGISTRY)}")
        require_seed(self.seed)
        require_number(self.outlier_z, "--outlier-z", low=0.0, low_open=True, keyword="outlier_z")
        require_number(self.near_duplicate, "--near-duplicate", low=0.0, keyword="near_duplicate",
                       meaning=" (a distance between unit-normalised embeddings, 0..2)")

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "balance": self.balance, "strategy": self.strategy, "seed": self.seed,
                "include_outliers": self.include_outliers, "outlier_z": self.outlier_z,
                "near_duplicate_distance": self.near_duplicate}


@dataclass
class Selection:
    """Chosen row indices (into the embedding matrix) and everything learnt while choosing them."""

    indices: list[int]
    quotas: list[ClassQuota]
    selected_per_class: dict[str | None, int]
    exact_duplicates: dict[int, int]
    outliers: list[int]
    coverage: dict[str, object] = field(default_factory=dict)
    domain_match: dict[str, object] | None = None
    #: The near-duplicate distance the selection used, and the rule's input (see :func:`near_duplicate_threshold`).
    near_duplicate: float = DEFAULT_NEAR_DUPLICATE
    typical_distance: float | None = None

    def near_duplicate_record(self) -> dict[str, float | None]:
        """What ``build`` records in the manifest's ``parameters`` so ``check`` applies the same rule."""
        return {"effective_near_duplicate_distance": self.near_duplicate,
                "typical_neighbour_distance": self.typical_distance}


def class_seed(seed: int, label: str | None) -> int:
    """A per-class seed derived from the global seed and the class name (stable across runs)."""
    tag = zlib.crc32(("\0" if label is None else label).encode("utf-8"))
    return int(np.random.SeedSequence([seed, tag]).generate_state(1)[0] % (2**31 - 1))


def exact_duplicate_map(fingerprints: list[str]) -> dict[int, int]:
    """Row → first row with the same content, for every row that repeats an earlier one."""
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for row, fp in enumerate(fingerprints):
        if fp in first:
            repeats[row] = first[fp]
        else:
            first[fp] = row
    return repeats


def class_members(labels: list[str | None]) -> dict[str | None, np.ndarray]:
    """Label → its row indices (ascending int64), labels in sorted order (``None`` first).

    One pass over the labels and a stable sort: O(n log n) whatever the number of classes (a mask
    per class was O(n · classes) Python comparisons, minutes at a million rows).
    """
    label_order = sorted(set(labels), key=lambda lab: "" if lab is None else lab)
    code_of = {lab: code for code, lab in enumerate(label_order)}
    codes = np.fromiter((code_of[lab] for lab in labels), dtype=np.int64, count=len(labels))
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(label_order)))])
    return {lab: order[bounds[code]:bounds[code + 1]] for code, lab in enumerate(label_order)}


def _coverage_stats(x: np.ndarray, members: dict[str | None, np.ndarray], chosen: list[int],
                    background: str | None = None) -> dict[str, object]:
    """Distance of every image to its nearest chosen one: mean, max, per class; with ``background`` (the name of
    the ``None`` stratum when it holds the images without objects) its row is named so and ``labelled`` gives
    the figures over the labelled images alone."""
    distances = nearest_distances(x, x[chosen], k=1)[0][:, 0].astype(np.float64)
    per_class: dict[str, dict[str, float]] = {}
    for label, rows in members.items():
        d = distances[rows]
        name = ("null" if background is None else background) if label is None else label
        per_class[name] = {"mean": round(float(d.mean()), 6), "max": round(float(d.max()), 6)}
    stats: dict[str, object] = {"mean": round(float(distances.mean()), 6), "max": round(float(distances.max()), 6),
                                "per_class": per_class}
    if background is not None:
        labelled = np.ones(distances.size, dtype=bool)
        labelled[members.get(None, np.zeros(0, dtype=np.int64))] = False
        d = distances[labelled] if labelled.any() else distances
        stats["labelled"] = {"images": int(labelled.sum()), "mean": round(float(d.mean()), 6), "max": round(float(d.max()), 6)}
    return stats


def _random_baseline(n: int, size: int, seed: int, draw: int) -> list[int]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBA5E, draw]))
    return sorted(int(i) for i in rng.choice(n, size=min(size, n), replace=False))


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 6), "std": round(float(np.std(values)), 6)}


def typical_neighbour_distance(x: np.ndarray, rows: np.ndarray, *, seed: int) -> float | None:
    """How crowded the feature space is: the median distance to the 5th nearest neighbour over a
    seeded sample of at most ``NEAR_DUPLICATE_SAMPLE`` of ``rows`` of ``x`` (unit-normalised);
    ``None`` when there are too few rows to tell. Rounded to 6 decimals like the coverage figures, so the
    last bits a batch size changes in the features change neither the rule nor the manifest."""
    if rows.size <= OUTLIER_NEIGHBOURS + 1:
        return None
    if rows.size > NEAR_DUPLICATE_SAMPLE:  # sample the row numbers: no copy of every eligible row
        rows = rows[np.sort(np.random.default_rng(seed).choice(rows.size, NEAR_DUPLICATE_SAMPLE, replace=False))]
    return round(float(np.median(neighbour_distances(x[rows], seed=seed)[:, OUTLIER_NEIGHBOURS - 1])), 6)


def near_duplicate_threshold(cap: float, typical_distance: float | None) -> float:
    """The near-duplicate distance, one rule for ``build`` and ``check``: ``cap`` (``--near-duplicate`` /
    ``duplicates.near_distance``), shrunk in crowded feature spaces to ``NEAR_DUPLICATE_NN_FRACTION`` of
    the typical distance to the 5th nearest neighbour (see :func:`typical_neighbour_distance`)."""
    if typical_distance is None:
        return cap
    return min(cap, NEAR_DUPLICATE_NN_FRACTION * typical_distance)


def _no_supply_reason(images: int) -> str:
    what = "its image is an exact duplicate" if images == 1 else f"all {images} images are exact duplicates"
    return f"{what} of other classes' images (see duplicates); each content is eligible once, under its first path"


#: How a task turns per-label supply into quotas: ``(available, size, balance) -> [ClassQuota]``.
QuotaRule = Callable[[dict[str | None, int], int, str], list[ClassQuota]]


def select_representatives(
    embeddings: np.ndarray, labels: list[str | None], fingerprints: list[str], config: SelectionConfig, *,
    target_embeddings: np.ndarray | None = None, quota_rule: QuotaRule = compute_quotas, background: str | None = None,
) -> Selection:
    """Pick ``config.size`` rows: class quotas, then ``config.strategy`` inside each class.

    Exact duplicates (same content) are never eligible twice; near duplicates (closer than
    ``config.near_duplicate``) are never picked together; far outliers are not picked unless
    ``include_outliers`` or a class has nothing else left.

    With ``target_embeddings`` (deployment domain) the set covers the target distribution within
    the class quotas: each target point is attributed to the class of its nearest training image;
    ``kmeans`` fits its centres on a class's target points and serves each with the nearest training
    image of that class; ``random`` samples with density-ratio importance weights.

    ``background``: the name of the ``None`` stratum when it holds images without objects (an annotated
    source): the coverage figures name its row so and add ``labelled``, the coverage of the labelled images.
    """
    x = l2_normalize(embeddings)
    n = x.shape[0]
    duplicates = exact_duplicate_map(fingerprints)
    members = class_members(labels)
    label_order = list(members)

    weights = None
    target_by_class: dict[str | None, np.ndarray] = {}
    if target_embeddings is not None:
        t = l2_normalize(target_embeddings)
        weights = density_ratio_weights(x, t, seed=config.seed)
        unique_rows = np.setdiff1d(np.arange(n), list(duplicates))
        nearest = unique_rows[nearest_distances(t, x[unique_rows], k=1)[1][:, 0]]
        owner = [labels[i] for i in nearest]
        target_by_class = {lab: t[[j for j, o in enumerate(owner) if o == lab]] for lab in label_order}

    eligible = np.ones(n, dtype=bool)
    eligible[list(duplicates)] = False
    typical_distance = typical_neighbour_distance(x, np.flatnonzero(eligible), seed=config.seed)
    near_duplicate = near_duplicate_threshold(config.near_duplicate, typical_distance)
    outliers: list[int] = []
    if not config.include_outliers:
        for lab in label_order:
            rows = members[lab][eligible[members[lab]]]
            if rows.size <= OUTLIER_NEIGHBOURS + 1:
                continue
            z = robust_z(neighbour_distances(x[rows], seed=class_seed(config.seed, lab))[:, OUTLIER_NEIGHBOURS - 1])
            outliers.extend(int(r) for r in rows[z > config.outlier_z])
    outlier_mask = np.zeros(n, dtype=bool)
    outlier_mask[outliers] = True

    supply = {lab: int(eligible[members[lab]].sum()) for lab in label_order}
    available = dict(supply)
    chosen: dict[str | None, list[int]] = {}
    # Water-fill quotas; a class that falls short (near duplicates) lowers its availability and
    # its shortfall is spread over the others on the next round.
    for _round in range(len(label_order) + 1):
        quotas = quota_rule(available, config.size, config.balance)
        shortfall = False
        for quota in quotas:
            lab = quota.label
            if lab in chosen and len(chosen[lab]) == quota.quota:
                continue
            rows = members[lab]
            local_eligible = eligible[rows] & ~outlier_mask[rows]
            if local_eligible.sum() < quota.quota:  # not enough inliers: the class's outliers are admitted
                local_eligible = eligible[rows].copy()
            local = pick(config.strategy, x[rows], quota.quota, seed=class_seed(config.seed, lab),
                         eligible=local_eligible, near_duplicate=near_duplicate,
                         weights=None if weights is None else weights[rows], target=target_by_class.get(lab))
            chosen[lab] = [int(rows[i]) for i in local]
            if len(local) < quota.quota:
                available[lab] = len(local)
                shortfall = True
        if not shortfall:
            break
    final_quotas = quota_rule(available, config.size, config.balance)
    # Report requests against the original supply so shortfalls stay visible.
    original_requested = {q.label: q.requested for q in quota_rule(supply, config.size, config.balance)}
    by_label = {q.label: ClassQuota(q.label, q.available, original_requested.get(q.label, q.requested), q.quota)
                for q in final_quotas}
    # A class with no eligible image is still reported (it used to vanish from the manifest).
    final_quotas = [by_label.get(lab) or ClassQuota(lab, 0, 0, 0, reason=_no_supply_reason(members[lab].size)
                                                    if supply[lab] == 0 else "no image of this class could be selected")
                    for lab in label_order]
    indices = [i for lab in label_order for i in chosen.get(lab, [])]

    selection = Selection(indices=indices, quotas=final_quotas,
                          selected_per_class={lab: len(chosen.get(lab, [])) for lab in label_order},
                          exact_duplicates=duplicates, outliers=sorted(outliers),
                          near_duplicate=near_duplicate, typical_distance=typical_distance)
    baselines = [_random_baseline(n, len(indices), config.seed, draw) for draw in range(BASELINE_DRAWS)]
    curated_cov = _coverage_stats(x, members, indices, background)
    random_cov = [_coverage_stats(x, members, b, background) for b in baselines]
    selection.coverage = {
        "metric": "euclidean distance between unit-normalised embeddings to the nearest selected image",
        "curated": curated_cov,
        "random": {"draws": BASELINE_DRAWS,
                   "mean": _mean_std([c["mean"] for c in random_cov]),  # type: ignore[misc]
                   "max": _mean_std([c["max"] for c in random_cov])},  # type: ignore[misc]
    }
    if background is not None:  # coverage of the labelled images alone: the background is reported by its own row
        selection.coverage["random"]["labelled"] = {  # type: ignore[index]
            "mean": _mean_std([c["labelled"]["mean"] for c in random_cov]),  # type: ignore[index]
            "max": _mean_std([c["labelled"]["max"] for c in random_cov])}  # type: ignore[index]
    if target_embeddings is not None:
        t = l2_normalize(target_embeddings)
        if t.shape[0] > MMD_MAX_POINTS:
            t = t[np.sort(np.random.default_rng(config.seed).choice(t.shape[0], MMD_MAX_POINTS, replace=False))]
        if len(indices) >= 2 and t.shape[0] >= 2:
            bandwidth = rbf_bandwidth(x[indices], t, seed=config.seed)
            random_mmd = [mmd_rbf(x[b], t, bandwidth=bandwidth) for b in baselines]
            selection.domain_match = {
                "target_images": int(t.shape[0]),
                "statistic": "unbiased MMD^2, Gaussian kernel, median-heuristic bandwidth",
                "bandwidth": round(bandwidth, 6),
                "mmd_curated": round(mmd_rbf(x[indices], t, bandwidth=bandwidth), 6),
                "mmd_random": _mean_std(random_mmd),
            }
    return selection
