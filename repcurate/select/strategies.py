"""Selection strategies inside one class: k-means medoids (faiss), greedy k-center, random.

Each returns an ordered list of row indices into the class's (L2-normalised) embeddings,
never picking an ineligible row and never two rows closer than ``near_duplicate``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from repcurate.registry import lookup, registrar
from repcurate.select.geometry import nearest_distances


class Strategy(Protocol):
    """Every strategy's one signature: ``k`` row indices into ``x`` (ordered, distinct, eligible, never two
    closer than ``near_duplicate``); ``weights`` (per row, optional) and ``target`` (embeddings of the data the
    set should cover, optional) may be ignored by a strategy that has no use for them."""

    def __call__(self, x: np.ndarray, k: int, *, seed: int, eligible: np.ndarray, near_duplicate: float,
                 weights: np.ndarray | None = None, target: np.ndarray | None = None) -> list[int]: ...


#: strategy name → pick function with the :class:`Strategy` signature.
REGISTRY: dict[str, Strategy] = {}
register = registrar(REGISTRY, "strategy", name_of=lambda strategy: strategy.__name__)
#: Lloyd iterations of the k-means.
KMEANS_ITERATIONS = 25
#: Candidates examined per centroid before it is left to the coverage fill.
CANDIDATES_PER_CENTROID = 32
#: Rows per centroid sampled for the k-means++ seeding (bounds its cost at O(this · k² · d)).
KMEANS_SEEDING_POINTS_PER_CENTROID = 32
#: A class whose rows × picks × dimensions is below this runs faiss on one thread. Such problems
#: are a few milliseconds of work split into many tiny OpenMP regions; when another process holds
#: a core, the spinning OpenMP threads made the per-class k-means 50–70× slower (speed benchmark,
#: BENCHMARKS.md), while one thread loses nothing measurable. Results are the same bits.
FAISS_SINGLE_THREAD_WORK = 1 << 30


@contextlib.contextmanager
def _faiss_threads_for(work: int) -> Iterator[None]:
    """faiss on one OpenMP thread inside the block when ``work`` is small, as configured otherwise."""
    import faiss

    if work >= FAISS_SINGLE_THREAD_WORK:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _too_close(candidate: np.ndarray, picked: list[np.ndarray], threshold: float) -> bool:
    if not picked or threshold <= 0:
        return False
    distances = np.linalg.norm(np.asarray(picked) - candidate, axis=1)
    return bool(distances.min() < threshold)


def kcenter_fill(x: np.ndarray, k: int, *, eligible: np.ndarray, picked: list[int], near_duplicate: float,
                 weights: np.ndarray | None = None) -> list[int]:
    """Extend ``picked`` greedily with the eligible row farthest from everything picked so far.

    Starts from the row nearest the (weighted) mean when nothing is picked. Stops early when every
    remaining row is a near duplicate of a picked one.
    """
    picked = list(picked)
    candidates = np.flatnonzero(eligible)
    if candidates.size == 0 or len(picked) >= k:
        return picked
    pool = x[candidates]
    if picked:
        min_dist = nearest_distances(pool, x[picked], k=1)[0][:, 0].astype(np.float64)
    else:
        w = None if weights is None else weights[candidates]
        centre = np.average(pool, axis=0, weights=w)
        first = int(np.argmin(np.linalg.norm(pool - centre, axis=1)))
        picked.append(int(candidates[first]))
        min_dist = np.linalg.norm(pool - pool[first], axis=1).astype(np.float64)
    taken = np.isin(candidates, picked)
    min_dist[taken] = -np.inf
    while len(picked) < k:
        best = int(np.argmax(min_dist))
        if not np.isfinite(min_dist[best]) or min_dist[best] < near_duplicate or min_dist[best] <= 0:
            break
        picked.append(int(candidates[best]))
        min_dist = np.minimum(min_dist, np.linalg.norm(pool - pool[best], axis=1))
        min_dist[best] = -np.inf
    return picked


def _kmeans_plus_plus(pool: np.ndarray, k: int, rng: np.random.Generator, weights: np.ndarray | None) -> np.ndarray:
    """k-means++ seeding (D² sampling, times the sample weights when given) on at most
    ``KMEANS_SEEDING_POINTS_PER_CENTROID · k`` rows.

    faiss starts from k uniformly drawn rows, which often puts two centres in one group and none in
    another (a whole mode then goes unrepresented) and ignores the weights; D² seeding spreads
    the centres over every mode and follows the weights.
    """
    n = pool.shape[0]
    w = np.ones(n) if weights is None else np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    if np.count_nonzero(w) < k:
        w = np.ones(n)
    limit = KMEANS_SEEDING_POINTS_PER_CENTROID * k
    if n > limit:
        rows = np.sort(rng.choice(n, size=limit, replace=False))
        if np.count_nonzero(w[rows]) >= k:
            pool, w, n = pool[rows], w[rows], limit
    sq = np.einsum("ij,ij->i", pool, pool, dtype=np.float64)
    chosen = [int(rng.choice(n, p=w / w.sum()))]
    d2 = np.maximum(sq + sq[chosen[0]] - 2.0 * (pool @ pool[chosen[0]]), 0.0)
    d2[chosen[0]] = 0.0
    for _ in range(1, k):
        score = d2 * w
        total = score.sum()
        if total > 0:
            nxt = int(rng.choice(n, p=score / total))
        else:  # every weighted row coincides with a centre: any row not chosen yet
            nxt = int(rng.choice(np.setdiff1d(np.arange(n), chosen)))
        chosen.append(nxt)
        d2 = np.minimum(d2, np.maximum(sq + sq[nxt] - 2.0 * (pool @ pool[nxt]), 0.0))
        d2[nxt] = 0.0
    return np.ascontiguousarray(pool[chosen], dtype=np.float32)


def _fit_centres(points: np.ndarray, k: int, *, seed: int, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """faiss k-means (k-means++ seeded, optionally sample-weighted): centres and cluster sizes."""
    import faiss

    points = np.ascontiguousarray(points, dtype=np.float32)
    kmeans = faiss.Kmeans(points.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed, verbose=False,
                          min_points_per_centroid=1, spherical=False)
    init = _kmeans_plus_plus(points, k, np.random.default_rng(seed), weights)
    kmeans.train(points, weights=None if weights is None else np.ascontiguousarray(weights, dtype=np.float32),
                 init_centroids=init)
    _, assignment = kmeans.index.search(points, 1)
    assert kmeans.centroids is not None  # set by train()
    return kmeans.centroids, np.bincount(assignment[:, 0], minlength=k)


def _serve_centres(centroids: np.ndarray, sizes: np.ndarray, x: np.ndarray, candidates: np.ndarray,
                   near_duplicate: float) -> list[int]:
    """For each centre, largest cluster first, the nearest candidate row that is not a near
    duplicate of one already picked (centres whose nearby candidates are all taken get none)."""
    pool = np.ascontiguousarray(x[candidates], dtype=np.float32)
    _, neighbours = nearest_distances(centroids, pool, k=min(CANDIDATES_PER_CENTROID, pool.shape[0]))
    picked: list[int] = []
    picked_vectors: list[np.ndarray] = []
    taken: set[int] = set()
    for centre in sorted(range(len(centroids)), key=lambda c: (-sizes[c], c)):
        if sizes[centre] == 0:
            continue
        for local in neighbours[centre]:
            if local < 0 or int(local) in taken:
                continue
            if _too_close(pool[local], picked_vectors, near_duplicate):
                continue
            taken.add(int(local))
            picked.append(int(candidates[local]))
            picked_vectors.append(pool[local])
            break
    return picked


def kmeans_pick(x: np.ndarray, k: int, *, seed: int, eligible: np.ndarray, near_duplicate: float,
                weights: np.ndarray | None = None, target: np.ndarray | None = None) -> list[int]:
    """k-means medoids: cluster, then serve each centre with its nearest eligible row.

    Without ``target`` the centres are fitted on the eligible rows themselves (optionally
    sample-weighted). With ``target`` (deployment-domain embeddings) they are fitted on the
    target points, so the picks cover the *target* distribution; when there are fewer target
    points than ``k`` each becomes a centre. Centres left without a representative, and any
    remainder, are filled by k-center coverage of the eligible rows.
    """
    if k <= 0:
        return []
    candidates = np.flatnonzero(eligible)
    picked: list[int] = []
    if target is not None and target.shape[0] > 0 and candidates.size > 0:
        k_fit = min(k, target.shape[0])
        if k_fit == target.shape[0]:
            centroids, sizes = np.ascontiguousarray(target, dtype=np.float32), np.ones(k_fit, dtype=np.int64)
        else:
            centroids, sizes = _fit_centres(target, k_fit, seed=seed, weights=None)
        picked = _serve_centres(centroids, sizes, x, candidates, near_duplicate)
    elif candidates.size > k:
        centroids, sizes = _fit_centres(x[candidates], k, seed=seed,
                                        weights=None if weights is None else weights[candidates])
        picked = _serve_centres(centroids, sizes, x, candidates, near_duplicate)
    if len(picked) < k:
        picked = kcenter_fill(x, k, eligible=eligible, picked=picked, near_duplicate=near_duplicate,
                              weights=weights)
    return picked


def random_pick(x: np.ndarray, k: int, *, seed: int, eligible: np.ndarray, near_duplicate: float = 0.0,
                weights: np.ndarray | None = None) -> list[int]:
    """A seeded uniform (or weight-proportional) sample of eligible rows, without replacement,
    skipping any row that is a near duplicate of one already drawn."""
    candidates = np.flatnonzero(eligible)
    k = min(k, candidates.size)
    if k <= 0:
        return []
    p = None
    if weights is not None:
        w = np.clip(weights[candidates].astype(np.float64), 0, None)
        if np.count_nonzero(w) >= k and w.sum() > 0:
            p = w / w.sum()
    rng = np.random.default_rng(seed)
    # Exponential race: sorting Exp(1) / p gives a (weighted) random order without replacement;
    # zero-weight rows come last and are only reached when near duplicates exhaust the others.
    keys = rng.exponential(size=candidates.size)
    if p is not None:
        with np.errstate(divide="ignore"):
            keys = keys / p
    picked: list[int] = []
    picked_vectors: list[np.ndarray] = []
    for row in candidates[np.argsort(keys, kind="stable")]:
        if _too_close(x[row], picked_vectors, near_duplicate):
            continue
        picked.append(int(row))
        picked_vectors.append(x[row])
        if len(picked) == k:
            break
    return picked


def kcenter_pick(x: np.ndarray, k: int, *, seed: int, eligible: np.ndarray, near_duplicate: float,
                 weights: np.ndarray | None = None, target: np.ndarray | None = None) -> list[int]:
    """Greedy k-center from scratch (:func:`kcenter_fill`); deterministic, so ``seed`` and ``target`` are unused."""
    return kcenter_fill(x, k, eligible=eligible, picked=[], near_duplicate=near_duplicate, weights=weights)


def _random(x: np.ndarray, k: int, *, seed: int, eligible: np.ndarray, near_duplicate: float,
            weights: np.ndarray | None = None, target: np.ndarray | None = None) -> list[int]:
    """:func:`random_pick` with the uniform signature (``target`` unused)."""
    return random_pick(x, k, seed=seed, eligible=eligible, near_duplicate=near_duplicate, weights=weights)


register(kmeans_pick, name="kmeans")
register(kcenter_pick, name="kcenter")
register(_random, name="random")

#: The built-in strategy names (the CLI's choices); :data:`REGISTRY` holds every registered one.
STRATEGIES = tuple(REGISTRY)


def pick(strategy: str, x: np.ndarray, k: int, *, seed: int, eligible: np.ndarray, near_duplicate: float,
         weights: np.ndarray | None = None, target: np.ndarray | None = None) -> list[int]:
    """Run the strategy registered as ``strategy`` (faiss single-threaded for small classes, see
    ``FAISS_SINGLE_THREAD_WORK``)."""
    chosen = lookup(REGISTRY, strategy, "strategy")
    rows = x.shape[0] + (0 if target is None else target.shape[0])
    with _faiss_threads_for(rows * max(k, 1) * (x.shape[1] if x.ndim == 2 else 1)):
        return chosen(x, k, seed=seed, eligible=eligible, near_duplicate=near_duplicate, weights=weights, target=target)
