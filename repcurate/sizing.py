"""``confirm --sizes``: how many calibration images are enough.

For each size the curated set's nested subset and K random sets of that size are quantized and scored; this
module picks the curated subsets, turns the runs into the metric-vs-size curve (curated, random min/mean/max,
std and spread) and recommends a size.

The curated subset of size ``s`` is taken from the set itself, not re-selected: the build's own quota rule
(:func:`~repcurate.select.quotas.compute_quotas` with the set's ``balance``) splits ``s`` over the set's
classes, and each class gives its first picks in the order the selection strategy made them (``kmeans``: the
medoids of the largest clusters first; ``kcenter``: farthest-point order, each prefix a k-center cover;
``random``: a random prefix). The manifest stores every class's picks in that order (``samples`` is grouped by
class, each group in pick order), so the subsets are nested, need no embeddings or training files, and the
curve measures size alone. A plain prefix of ``samples`` would not do: it is one class after another.
A re-selection (a new k-means with ``s`` centres) can pick slightly different images than such a prefix.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repcurate import tasks
from repcurate.options import MAX_COUNT, OptionError, require_number
from repcurate.select.quotas import compute_quotas

#: ``--tolerance`` when none is given, in the headline metric's shown unit (top-1 / agreement / cosine
#: points, or dB for SQNR).
DEFAULT_TOLERANCE = 1.0


def check_sizes(sizes: Sequence[int], tolerance: float) -> list[int]:
    """``sizes`` as distinct ascending ints (exit 2 naming ``--sizes`` otherwise); checks ``tolerance`` too."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
        raise OptionError(f"--sizes (sizes): {sizes!r} is not a non-empty list of sizes; fix: e.g. --sizes 16,32,64,128")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= int(s) <= MAX_COUNT:
            raise OptionError(f"--sizes (sizes): {s!r} is not an integer from 1 to {MAX_COUNT}; "
                              "fix: e.g. --sizes 16,32,64,128")
    require_number(tolerance, "--tolerance", low=0.0, low_open=True, keyword="tolerance")
    return sorted({int(s) for s in sizes})


def check_sizes_fit(sizes: list[int], set_size: int, set_dir: str) -> None:
    """A size larger than the set cannot be a subset of it (exit 2 with the fix)."""
    if sizes[-1] > set_size:
        raise OptionError(f"--sizes: {sizes[-1]} is larger than the set ({set_size} samples in {set_dir}); fix: pass "
                          f"sizes up to {set_size}, or build a set of {sizes[-1]} with `repcurate build --size {sizes[-1]}`")


def curated_subset(manifest: dict[str, Any], size: int) -> np.ndarray:
    """Row indices (ascending, into the set's tensors) of the curated set's nested subset of ``size`` samples."""
    labels = [s.get("label") for s in manifest["samples"]]
    rows_of: dict[Any, list[int]] = {}
    for row, label in enumerate(labels):
        rows_of.setdefault(label, []).append(row)
    balance = (manifest.get("parameters") or {}).get("balance", "uniform")
    quotas = compute_quotas({label: len(rows) for label, rows in rows_of.items()}, size,
                            balance if balance in ("uniform", "proportional") else "uniform")
    return np.array(sorted(r for q in quotas for r in rows_of[q.label][:q.quota]), dtype=np.int64)


def curve(arms: list[dict[str, Any]], metric: str, point_of: Any) -> list[dict[str, Any]]:
    """One row per (settings-grid point, size): curated, the random sets' min/mean/max/std, spread (max − min)."""
    rows = []
    points: dict[str, dict[str, Any]] = {}
    for a in arms:
        points.setdefault(repr(sorted(point_of(a).items())), point_of(a))
    for point in points.values():
        for size in sorted({a["size"] for a in arms if "size" in a}):
            runs = [a for a in arms if a.get("size") == size and point_of(a) == point]
            random = [a["metric"][metric] for a in runs if a["set"].startswith("random-")]
            curated = next((a["metric"][metric] for a in runs if a["set"] == "curated"), None)
            stats = ({"random_min": min(random), "random_mean": round(float(np.mean(random)), 6),
                      "random_max": max(random), "random_std": round(float(np.std(random)), 6),
                      "random_spread": round(max(random) - min(random), 6)} if random else
                     dict.fromkeys(("random_min", "random_mean", "random_max", "random_std", "random_spread")))
            rows.append({**point, "size": size, "curated": curated, **stats, "random_runs": len(random)})
    return rows


def recommend(rows: list[dict[str, Any]], metric: str, tolerance: float, axes: list[str]) -> list[dict[str, Any]]:
    """Per grid point: the smallest size whose curated score is within ``tolerance`` (shown units) of the largest
    size's and whose random sets' spread is below ``tolerance`` (with fewer than 2 random sets there is no
    spread and only the first condition applies), or ``None`` with the reason."""
    how = tasks.metric(metric)
    limit = tolerance / how.scale
    sign = 1.0 if how.higher_is_better else -1.0
    unit = how.unit_suffix
    out = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(repr([r.get(a) for a in axes]), []).append(r)
    for group in groups.values():
        point = {a: group[0][a] for a in axes if a in group[0]}
        largest = group[-1]
        if largest["curated"] is None:
            out.append({**point, "size": None, "reason": "no curated runs"})
            continue
        chosen, why_not = None, []
        for r in group:
            close = sign * (r["curated"] - largest["curated"]) >= -limit - 1e-12
            steady = r["random_spread"] is None or r["random_spread"] < limit
            if close and steady:
                chosen = r
                break
            why_not.append(r["size"])
        if chosen is None:
            out.append({**point, "size": None, "reason": f"the random sets' spread is not below {tolerance:g}{unit} "
                                                          "at any size; fix: try larger sizes or a larger --tolerance"})
            continue
        gap = abs(chosen["curated"] - largest["curated"]) * how.scale
        spread = ("" if chosen["random_spread"] is None else
                  f", random spread {chosen['random_spread'] * how.scale:.2f}{unit} < {tolerance:g}{unit}")
        out.append({**point, "size": chosen["size"],
                    "reason": f"curated {how.format(chosen['curated'])} at {chosen['size']} is within {tolerance:g}{unit} "
                              f"of {how.format(largest['curated'])} at {largest['size']} (gap {gap:.2f}{unit}){spread}"})
    return out
