"""A 2-D picture of the training pool for the report: PCA of the embeddings, selected rows marked."""
from __future__ import annotations

from typing import Any

import numpy as np

from repcurate.select.geometry import pca_2d

#: Training rows kept in ``projection.npz`` at most (every selected row, then a seeded sample of the
#: others): enough to show the pool's shape (the report draws at most 6,000 unselected points per
#: plot), bounded in time and memory for million-image folders.
MAX_PROJECTION_POINTS = 10_000
#: Decimals kept of every coordinate (they lie in -2..2; 1e-4 is far below a pixel of any plot). The
#: features of one file can differ in their last bits with the batch they were computed in (a cache
#: filled with another --batch-size); rounding keeps such noise out of the file's bytes.
PROJECTION_DECIMALS = 4


def build_projection(embeddings: np.ndarray, labels: list[str | None], selected: list[int],
                     class_order: list[str | None], *, seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays for ``projection.npz`` and their description for the manifest.

    Arrays (one row per kept training image, in embedding order): ``xy`` the PCA of the
    unit-normalised embeddings of the whole pool; ``xy_class`` the PCA fitted inside each class (the
    space the per-class selection works in); ``label`` the index into ``class_order`` (the
    manifest's ``classes``), -1 if absent; ``sample`` the row's index in the manifest's ``samples``,
    -1 when not selected.
    """
    n = embeddings.shape[0]
    sample_of = np.full(n, -1, dtype=np.int32)
    sample_of[np.asarray(selected, dtype=np.int64)] = np.arange(len(selected), dtype=np.int32)
    keep = np.arange(n)
    if n > MAX_PROJECTION_POINTS:
        others = np.flatnonzero(sample_of < 0)
        room = max(0, MAX_PROJECTION_POINTS - len(selected))
        sampled = np.random.default_rng(np.random.SeedSequence([seed, 0x2D])).choice(others, min(room, others.size), replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(sample_of >= 0), sampled]))
    x = np.asarray(embeddings[keep], dtype=np.float64)  # float64 throughout: no float32 rounding to amplify
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    index_of = {lab: i for i, lab in enumerate(class_order)}
    label = np.array([index_of.get(labels[int(i)], -1) for i in keep], dtype=np.int32)
    xy, ratios = pca_2d(x)
    xy_class = np.zeros_like(xy)
    for i in sorted(set(label.tolist())):
        rows = np.flatnonzero(label == i)
        xy_class[rows] = pca_2d(x[rows])[0]
    # (+ 0.0 turns a -0.0 into 0.0: a sign flip of noise around zero must not change the bytes)
    xy, xy_class = ((np.round(a.astype(np.float64), PROJECTION_DECIMALS) + 0.0).astype(np.float32) for a in (xy, xy_class))
    arrays = {"xy": xy, "xy_class": xy_class, "label": label, "sample": sample_of[keep]}
    info = {"method": "pca", "space": "unit-normalised embeddings", "points": int(keep.size), "of": int(n),
            "explained_variance_ratio": ratios}
    return arrays, info
