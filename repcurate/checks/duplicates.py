"""``duplicates``: exact (same content) and near (embedding distance) duplicates inside the set."""
from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from repcurate.checks.base import Check, Measurement, Param, Status
from repcurate.checks.context import EMBEDDINGS, CheckContext, Unavailable
from repcurate.select.geometry import l2_normalize
from repcurate.select.selection import DEFAULT_NEAR_DUPLICATE, near_duplicate_threshold, typical_neighbour_distance


def _recorded_typical_distance(ctx: CheckContext) -> tuple[bool, float | None]:
    """``(recorded, distance)``: the typical 5-NN distance ``build`` measured on the training pool with
    the set's model (``distance`` may be None: a pool too small to tell). Not recorded by older sets,
    and not valid when ``--model`` embeds in another space."""
    parameters = ctx.manifest.get("parameters")
    if ctx.model_given or not isinstance(parameters, dict) or "typical_neighbour_distance" not in parameters:
        return False, None
    value = parameters["typical_neighbour_distance"]
    if value is None:
        return True, None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return False, None  # a damaged record: recompute rather than trust it
    return True, float(value)


class DuplicatesCheck(Check):
    id = "duplicates"
    description = ("No image (or tensor) appears twice, and no two images are near duplicates in embedding space "
                   "(closer than build's near-duplicate distance: near_distance, shrunk in crowded feature spaces).")
    #: Unit-normalised embeddings lie at most 2 apart.
    parameters = {"near_distance": Param(DEFAULT_NEAR_DUPLICATE, minimum=0, maximum=2),
                  "warn_fraction": Param(0.0, minimum=0, maximum=1), "fail_fraction": Param(0.1, minimum=0, maximum=1)}
    uses = frozenset({EMBEDDINGS})

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        samples = ctx.manifest["samples"]
        paths = [s["path"] for s in samples]
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            groups.setdefault(s["content_fingerprint"], []).append(i)
        for i, tensor in enumerate(ctx.repset.tensors):
            groups.setdefault("tensor:" + hashlib.blake2b(tensor.tobytes(), digest_size=16).hexdigest(), []).append(i)
        exact = sorted({tuple(g) for g in groups.values() if len(g) > 1})
        near: list[tuple[int, int, float]] = []
        near_note = ""
        threshold: dict[str, Any] = {}
        try:
            x = l2_normalize(ctx.repset_embeddings)
            # build's rule (cap shrunk in crowded feature spaces) with the crowding build measured on the
            # training pool; recomputed on the set itself for sets that did not record it
            recorded, typical = _recorded_typical_distance(ctx)
            if not recorded:
                typical = typical_neighbour_distance(x, np.arange(x.shape[0]), seed=ctx.seed)
            distance = near_duplicate_threshold(params["near_distance"], typical)
            threshold = {"near_distance_used": distance, "typical_neighbour_distance": typical,
                         "typical_from": "manifest" if recorded else "the set's embeddings"}
            sq = np.sum(x * x, axis=1)
            dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
            rows, cols = np.nonzero(np.triu(dist < distance, k=1))
            exact_pairs = {(a, b) for g in exact for a in g for b in g if a < b}
            near = [(int(a), int(b), float(dist[a, b])) for a, b in zip(rows, cols) if (a, b) not in exact_pairs]
        except Unavailable as exc:
            near_note = f" (near duplicates not checked: {exc})"
        duplicated = {i for g in exact for i in g[1:]} | {b for _a, b, _d in near}
        fraction = len(duplicated) / max(1, len(samples))
        details = {
            "exact_groups": [[paths[i] for i in g] for g in exact],
            "near_pairs": [{"a": paths[a], "b": paths[b], "distance": round(d, 5)} for a, b, d in near[:50]],
            "near_pairs_total": len(near), "redundant_images": len(duplicated), **threshold,
        }
        return Measurement(round(fraction, 4), f"{len(exact)} exact duplicate group(s), {len(near)} near-duplicate pair(s){near_note}", details)

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        if m.value > params["fail_fraction"]:
            return Status.FAIL, f"{m.value:.0%} of the set is redundant: {m.message}; fix: rebuild with repcurate build (deduplicates)"
        if m.value > params["warn_fraction"]:
            return Status.WARN, f"{m.message}; duplicates over-weight their content in PTQ statistics"
        return Status.PASS, m.message
