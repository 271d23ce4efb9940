"""Does the calibration set matter for this model? Threshold and bias-correction stability across random sets.

For each size N and B seeded random subsets of the pool, every activation quantization point's threshold (as MCT
computes it, :mod:`repcurate.analysis.mct_thresholds`) is compared with the whole pool's, and every corrected
kernel's bias-correction term with the pool's term.

Rules (stated in every result):
- every draw runs MCT's steps after statistics collection on the draw's statistics
  (:meth:`Collected.simulate`: thresholds, shift-negative correction, bias correction), so points MCT adds
  (shift-negative corrections) are compared too; their noise cost is not computed (their flips count);
- a point *flips* in a draw when its threshold differs from the pool's; its *steps* are |log2(t / t_pool)|
  (whole powers of two on power-of-two TPCs);
- a kernel's bias term *moves* in a draw when some output channel's term differs from the pool's by more than
  half a quantization step of the first quantized activation at or after the kernel (threshold / 2^(bits − signed));
- a flip *costs* when the draw's threshold, applied to the pool's own histogram, raises the quantization noise by
  more than 0.1 % of the signal power (the point's SQNR would drop below 30 dB from this alone);
- the *recommended size* is the smallest N (this one and every larger one) at which >= 99 % of points keep the
  pool's threshold in >= 95 % of draws;
- the *sufficient size* is the smallest N (this one and every larger one) at which, in >= 95 % of draws, no point
  has a costly flip and no kernel's bias term moves by more than half a step;
- the verdict at the chosen size N is "the set matters here" when N is below the sufficient size (or no size is
  sufficient), else "any reasonable set of >= N images will do" (N = the sufficient size).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repcurate.analysis.mct_thresholds import Collected, relative_noise

SIZES = (8, 16, 32, 64, 128, 300)
POINT_SHARE = 0.99
DRAW_SHARE = 0.95
HALF_STEP = 0.5
NOISE = 1e-3
MATTERS = "the set matters here"
WILL_DO = "any reasonable set of >= {n} images will do"


def threshold_of(params: dict[str, Any]) -> float:
    """A point's scalar threshold: ``threshold`` (power-of-two / symmetric), else the uniform range's width."""
    if "threshold" in params:
        return float(params["threshold"])
    return float(params["range_max"]) - float(params["range_min"])


def steps(value: float, reference: float) -> float:
    """|log2(value / reference)|, 0 for equal values; infinite when exactly one is zero."""
    if value == reference:
        return 0.0
    if value <= 0 or reference <= 0:
        return math.inf
    return abs(math.log2(value / reference))


def draws(pool: int, sizes: Sequence[int], repeats: int, seed: int) -> dict[int, list[list[int]]]:
    """``repeats`` seeded random subsets (sorted pool indices) per size <= ``pool``."""
    rng = np.random.default_rng(seed)
    return {n: [sorted(rng.choice(pool, size=n, replace=False).tolist()) for _ in range(repeats)]
            for n in sizes if n <= pool}


@dataclass
class SizeRow:
    """Stability of every point and kernel at one size."""

    size: int
    flips: dict[str, float]  # point -> share of draws whose threshold differs from the pool's
    max_steps: dict[str, float]  # point -> largest |log2| step seen
    moves: dict[str, float]  # kernel -> share of draws whose bias term moves by > half a step
    spread: dict[str, float]  # kernel -> mean over draws of max-channel |term - pool term| / output step
    costly: dict[str, float]  # point -> share of draws whose threshold costs > NOISE of the signal power

    def stable_points(self) -> float:
        """Share of points keeping the pool's threshold in >= 95 % of draws."""
        if not self.flips:
            return 1.0
        return sum(1 for v in self.flips.values() if v <= 1 - DRAW_SHARE) / len(self.flips)

    def stable(self) -> bool:
        """The recommended-size rule holds at this size."""
        return self.stable_points() >= POINT_SHARE

    def sufficient(self) -> bool:
        """No costly flip and no moving bias term in >= 95 % of draws, at every point and kernel."""
        return all(v <= 1 - DRAW_SHARE for v in [*self.costly.values(), *self.moves.values()])

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "stable_points": round(self.stable_points(), 4), "stable": self.stable(),
                "sufficient": self.sufficient(), "costly_flips": _rounded(self.costly),
                "flips": _rounded(self.flips), "max_steps": _rounded(self.max_steps),
                "bias_moves": _rounded(self.moves), "bias_spread_steps": _rounded(self.spread)}


@dataclass
class Analysis:
    """The stability analysis of one model + TPC + quantization config over a pool."""

    pool: int
    repeats: int
    seed: int
    chosen: int
    pool_thresholds: dict[str, float]
    rows: list[SizeRow]
    built: dict[str, Any] | None = None
    points: list[dict[str, Any]] = field(default_factory=list)

    def _smallest(self, ok: str) -> int | None:
        best = None
        for row in reversed(self.rows):
            if not getattr(row, ok)():
                break
            best = row.size
        return best

    @property
    def recommended(self) -> int | None:
        """Smallest N whose row is stable and every larger row too (None when no size is)."""
        return self._smallest("stable")

    @property
    def sufficient(self) -> int | None:
        """Smallest N whose row is sufficient and every larger row too (None when no size is)."""
        return self._smallest("sufficient")

    @property
    def verdict(self) -> str:
        enough = self.sufficient
        if enough is None or self.chosen < enough:
            return MATTERS
        return WILL_DO.format(n=enough)

    def flippers(self, top: int = 5) -> list[tuple[str, float]]:
        """Points that flip most over all sizes (mean share of flipping draws), most first."""
        scores = {name: float(np.mean([row.flips[name] for row in self.rows])) for name in self.pool_thresholds}
        ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(k, round(v, 4)) for k, v in ordered[:top] if v > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "matters": self.verdict == MATTERS, "chosen_size": self.chosen,
            "recommended_size": self.recommended,
            "sufficient_size": self.sufficient, "pool": self.pool, "draws_per_size": self.repeats,
            "seed": self.seed,
            "rule": (f"recommended size = smallest N with >= {POINT_SHARE:.0%} of points keeping the pool's threshold "
                     f"in >= {DRAW_SHARE:.0%} of draws; sufficient size = smallest N at which, in >= {DRAW_SHARE:.0%} "
                     f"of draws, no threshold raises the pool's quantization noise by > {NOISE:.1%} of the signal power "
                     f"and no bias-correction term moves by > {HALF_STEP} of its output's quantization step; the set "
                     "matters when the chosen size is below the sufficient size"),
            "points": self.points, "pool_thresholds": self.pool_thresholds,
            "sizes": [row.to_dict() for row in self.rows],
            "most_flipping": [{"point": k, "flip_share": v} for k, v in self.flippers()],
            "built_set": self.built,
        }


def _rounded(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if not math.isfinite(v) else round(v, 4)) for k, v in values.items()}


def _output_steps(collected: Collected, pool_params: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Per corrected kernel: the quantization step of the first quantized activation at or after it."""
    points = {p.name: p for p in collected.points if p.name in pool_params}
    out = {}
    for kernel in collected.kernels:
        node = collected._nodes[kernel.name]
        frontier = [node]
        seen = set()
        step = math.nan
        while frontier:
            current = frontier.pop(0)
            if current.name in points:
                params = pool_params[current.name]
                signed = bool(params.get("is_signed", params.get("range_min", 0) < 0))
                step = threshold_of(params) / 2 ** (points[current.name].n_bits - int(signed))
                break
            seen.add(current.name)
            frontier.extend(n for n in collected.graph.get_next_nodes(current) if n.name not in seen)
        out[kernel.name] = step
    return out


@dataclass
class _Reference:
    """The pool's thresholds, bias terms, histograms and noise, against which draws are compared."""

    thresholds: dict[str, float]
    terms: dict[str, np.ndarray]  # corrected kernel -> final bias (MCT's bias after its graph changes, less the correction)
    out_steps: dict[str, float]
    histograms: dict[str, tuple[np.ndarray, np.ndarray]]
    noise: dict[str, float]
    bits: dict[str, int]


def _reference(collected: Collected, pool: int) -> tuple[_Reference, dict[str, dict[str, Any]]]:
    everything = list(range(pool))
    params, biases = collected.simulate(everything)
    bits = {p.name: p.n_bits for p in collected.points}
    histograms = {name: collected.histogram(name, everything) for name in params if name in bits}
    ref = _Reference({name: threshold_of(p) for name, p in params.items()},
                     {k.name: biases[k.name] for k in collected.kernels if k.name in biases},
                     _output_steps(collected, params), histograms,
                     {name: relative_noise(histograms[name], params[name], bits[name]) for name in histograms}, bits)
    return ref, params


def _compare(collected: Collected, subset: Sequence[int],
             ref: _Reference) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    params, biases = collected.simulate(subset)
    point_steps = {name: steps(threshold_of(params[name]), t) if name in params else math.inf
                   for name, t in ref.thresholds.items()}
    cost = {name: (relative_noise(ref.histograms[name], params[name], ref.bits[name]) - ref.noise[name]
                   if point_steps[name] and name in ref.histograms and name in params else 0.0)
            for name in ref.thresholds}
    kernel_steps = {name: float(np.max(np.abs(biases[name] - ref.terms[name]))) / ref.out_steps[name]
                    if ref.out_steps.get(name, 0) > 0 and name in biases else 0.0 for name in ref.terms}
    return point_steps, kernel_steps, cost


def analyze(collected: Collected, *, pool: int | None = None, sizes: Sequence[int] = SIZES, repeats: int = 10,
            seed: int = 0, chosen: int | None = None, built: Sequence[int] | None = None) -> Analysis:
    """Stability of MCT's thresholds and bias terms across ``repeats`` random sets per size, drawn from the
    first ``pool`` collected images (the rest, e.g. a built set's samples, are only compared via ``built``)."""
    pool = collected.n_images if pool is None else pool
    ref, _params = _reference(collected, pool)
    pool_t, pool_terms = ref.thresholds, ref.terms
    rows = []
    for n, subsets in draws(pool, sizes, repeats, seed).items():
        per_draw = [_compare(collected, s, ref) for s in subsets]
        rows.append(SizeRow(
            n,
            flips={k: float(np.mean([d[0][k] > 0 for d in per_draw])) for k in pool_t},
            max_steps={k: float(max(d[0][k] for d in per_draw)) for k in pool_t},
            moves={k: float(np.mean([d[1][k] > HALF_STEP for d in per_draw])) for k in pool_terms},
            spread={k: float(np.mean([d[1][k] for d in per_draw])) for k in pool_terms},
            costly={k: float(np.mean([d[2][k] > NOISE for d in per_draw])) for k in pool_t},
        ))
    points = [{"point": p.name, "bits": p.n_bits, "method": p.method, "error_method": p.error_method}
              for p in collected.points]
    default_chosen = len(built) if built else min(max(sizes), pool)
    result = Analysis(pool, repeats, seed, chosen or default_chosen, pool_t, rows, points=points)
    if built:
        result.built = _built_vs_random(collected, list(built), pool, repeats, seed, ref)
    return result


def _built_vs_random(collected: Collected, built: list[int], pool: int, repeats: int, seed: int,
                     ref: _Reference) -> dict[str, Any]:
    """How many points a built set's thresholds match (the pool's) vs random sets of its size."""
    size = len(built)
    mine, kernels, _cost = _compare(collected, built, ref)
    matched = sum(1 for v in mine.values() if v == 0)
    random_matched = []
    if size <= pool:
        for subset in draws(pool, [size], repeats, seed + 1)[size]:
            point_steps, _, _ = _compare(collected, subset, ref)
            random_matched.append(sum(1 for v in point_steps.values() if v == 0))
    return {"size": size, "points": len(mine), "matched": matched,
            "random_matched_mean": round(float(np.mean(random_matched)), 3) if random_matched else None,
            "random_matched_min": min(random_matched) if random_matched else None,
            "random_matched_max": max(random_matched) if random_matched else None,
            "bias_spread_steps": _rounded(kernels)}
