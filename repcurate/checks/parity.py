"""Diagnose how two preprocessing outputs of the same raw image differ, and what to change."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repcurate.render.channels import channel_axis

#: Outputs closer than this (relative to their value range) are the same pipeline.
MATCH_TOLERANCE = 1e-3
#: Per-channel correlation above which two outputs are (nearly) an affine function of each other.
AFFINE_CORRELATION = 0.99
#: Per-channel correlation above which the affine relation is exact up to float rounding: only the
#: scale / mean / std differ. Resampling differences (bilinear vs bicubic) stay well below it (≈ 0.997).
EXACT_AFFINE_CORRELATION = 0.9999
#: A nearly affine relation whose slope leaves [1/2, 2] is a scale difference even if resampling differs too.
SCALE_RATIO = 2.0
#: Causes that change what the quantizer sees; other differences (resampling) are warnings.
MAJOR_CAUSES = frozenset({"layout", "channel_count", "spatial_size", "channel_order", "value_scale",
                          "normalisation", "inverted", "dtype"})


@dataclass(frozen=True)
class Diagnosis:
    cause: str | None
    message: str


def _describe(a: np.ndarray) -> str:
    return f"range [{float(a.min()):.3g}, {float(a.max()):.3g}], mean {float(a.mean()):.3g}, std {float(a.std()):.3g}"


def value_kind(a: np.ndarray) -> str:
    """Coarse value convention: ``0..1``, ``0..255``, ``standardised`` (signed, centred) or ``other``."""
    lo, hi = float(a.min()), float(a.max())
    if lo >= -1e-6 and hi <= 1.0 + 1e-6:
        return "0..1"
    if lo >= -1e-6 and hi <= 255.0 + 1e-6:
        return "0..255"
    if lo < 0 < hi:
        return "standardised"
    return "other"


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-6)
    return bool(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) <= MATCH_TOLERANCE * scale)


def _affine(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Least-squares fit b ≈ s·a + t over all values: (s, t, correlation)."""
    x, y = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if x.std() == 0 and y.std() == 0:  # two constants: an offset explains them exactly
        return 1.0, float(y.mean() - x.mean()), 1.0
    if x.std() == 0 or y.std() == 0:
        return 0.0, 0.0, 0.0
    r = float(np.corrcoef(x, y)[0, 1])
    s = r * y.std() / x.std()
    return float(s), float(y.mean() - s * x.mean()), r


def _channel_fits(ref: np.ndarray, cand: np.ndarray, axis: int | None) -> list[tuple[float, float, float]]:
    """:func:`_affine` per channel (torchvision-style Normalize is per channel), or over all values."""
    if axis is None:
        return [_affine(ref, cand)]
    return [_affine(np.take(ref, i, axis=axis), np.take(cand, i, axis=axis)) for i in range(ref.shape[axis])]


def _fit_text(fits: list[tuple[float, float, float]], whole: tuple[float, float, float]) -> str:
    slopes, offsets = [f[0] for f in fits], [f[1] for f in fits]
    if len(fits) == 1 or (max(slopes) - min(slopes) <= 1e-3 * max(abs(x) for x in slopes)
                          and max(offsets) - min(offsets) <= 1e-3 * max(1.0, max(abs(x) for x in offsets))):
        return f"evaluation ≈ {whole[0]:.4g}·set + {whole[1]:.4g}"
    return "per channel evaluation ≈ " + ", ".join(f"{s:.4g}·set + {t:.4g}" for s, t, _r in fits)


def diagnose(reference: np.ndarray, candidate: np.ndarray) -> Diagnosis:
    """How ``candidate`` (evaluation pipeline) differs from ``reference`` (the set's pipeline)."""
    ref, cand = np.asarray(reference), np.asarray(candidate)
    if ref.shape != cand.shape:
        if ref.ndim == 3 and cand.ndim == 3 and sorted(ref.shape) == sorted(cand.shape):
            ref_axis, cand_axis = channel_axis(ref.shape), channel_axis(cand.shape)
            names = {0: "CHW (channels first)", 2: "HWC (channels last)"}
            if ref_axis != cand_axis and ref_axis is not None and cand_axis is not None:
                return Diagnosis("layout", f"layout differs: the set is {names[ref_axis]} {ref.shape}, the evaluation "
                                           f"pipeline gives {names[cand_axis]} {cand.shape}; fix: transpose one pipeline "
                                           "(e.g. ToTensor / .transpose(2, 0, 1)) so both give the model's layout")
        ref_axis, cand_axis = channel_axis(ref.shape), channel_axis(cand.shape)
        if ref.ndim == cand.ndim == 3 and ref_axis is not None and ref_axis == cand_axis:
            rc, cc = ref.shape[ref_axis], cand.shape[cand_axis]
            if rc != cc:
                return Diagnosis("channel_count", f"channel count differs: the set has {rc}, the evaluation pipeline gives "
                                                  f"{cc} (greyscale vs RGB); fix: convert both to the same mode")
            spatial = [d for i, d in enumerate(ref.shape) if i != ref_axis], [d for i, d in enumerate(cand.shape) if i != cand_axis]
            return Diagnosis("spatial_size", f"spatial size differs: the set is {spatial[0][0]}×{spatial[0][1]}, the evaluation "
                                             f"pipeline gives {spatial[1][0]}×{spatial[1][1]}; fix: resize/crop to the same size")
        if abs(ref.ndim - cand.ndim) == 1 and 2 <= min(ref.ndim, cand.ndim) and max(ref.ndim, cand.ndim) == 3:
            three, two = (ref, cand) if ref.ndim == 3 else (cand, ref)
            axis = channel_axis(three.shape)
            if axis is not None and tuple(d for i, d in enumerate(three.shape) if i != axis) == two.shape:
                which = "the set" if two is ref else "the evaluation pipeline"
                if three.shape[axis] == 1:
                    return Diagnosis("layout", f"layout differs: {which} has no channel axis ({ref.shape} vs {cand.shape}); "
                                               "fix: add the channel axis (e.g. x[None]) so both give the model's layout")
                return Diagnosis("channel_count", f"channel count differs: {which} is greyscale without a channel axis, the "
                                                  f"other has {three.shape[axis]} channels ({ref.shape} vs {cand.shape}); "
                                                  "fix: convert both to the same mode")
        return Diagnosis("spatial_size", f"shape differs: the set {ref.shape}, the evaluation pipeline {cand.shape}; "
                                         "fix: make both pipelines produce the model's input shape")
    if ref.dtype != cand.dtype and _close(ref, cand):
        return Diagnosis("dtype", f"dtype differs: the set is {ref.dtype}, the evaluation pipeline gives {cand.dtype}; "
                                  "fix: cast to the model's input dtype in both")
    if _close(ref, cand):
        return Diagnosis(None, "identical")
    axis = channel_axis(ref.shape)
    fits = _channel_fits(ref, cand, axis)
    rs = [r for _s, _t, r in fits]
    if axis is not None and ref.shape[axis] == 3 and min(rs) <= EXACT_AFFINE_CORRELATION:
        flipped = np.flip(ref, axis=axis)
        if _close(flipped, cand) or min(r for *_, r in _channel_fits(flipped, cand, axis)) > EXACT_AFFINE_CORRELATION:
            return Diagnosis("channel_order", "channel order differs: the evaluation pipeline gives the set's channels reversed "
                                              "(RGB vs BGR); fix: use the same order in both (PIL decodes RGB, OpenCV BGR)")
    whole = _affine(ref, cand)
    stats = f"set {_describe(ref)}; evaluation {_describe(cand)}"
    if max(rs) < -AFFINE_CORRELATION:
        return Diagnosis("inverted", f"intensities are inverted (x ↔ {whole[1]:.3g} − x): {stats}; "
                                     "fix: remove the inversion from the pipeline that has it")
    if min(rs) > AFFINE_CORRELATION:
        ref_kind, cand_kind = value_kind(ref), value_kind(cand)
        if ref_kind != cand_kind:
            fixes = {("0..1", "0..255"): "divide by 255 (e.g. ToTensor)", ("0..255", "0..1"): "multiply by 255",
                     ("standardised", "0..1"): "add the missing mean/std normalisation",
                     ("standardised", "0..255"): "scale to 0..1 and add the missing mean/std normalisation",
                     ("0..1", "standardised"): "remove the extra mean/std normalisation",
                     ("0..255", "standardised"): "remove the extra normalisation and keep 0..255"}
            fix = fixes.get((ref_kind, cand_kind), "use the same scaling and normalisation as the set")
            return Diagnosis("value_scale", f"value scale differs: the set is {ref_kind}, the evaluation pipeline gives "
                                            f"{cand_kind} ({_fit_text(fits, whole)}); {stats}; fix: in the "
                                            f"evaluation pipeline {fix}")
        if min(rs) > EXACT_AFFINE_CORRELATION or any(not 1 / SCALE_RATIO <= s <= SCALE_RATIO for s, _t, _r in fits):
            return Diagnosis("normalisation", f"mean/std normalisation differs (both {ref_kind}, {_fit_text(fits, whole)}); "
                                              f"{stats}; fix: use the same Normalize(mean, std) in both pipelines")
    r = whole[2]
    if r > 0.9 or min(rs) > AFFINE_CORRELATION:
        return Diagnosis("resampling", f"values differ slightly (correlation {r:.3f}, max |Δ| "
                                       f"{float(np.max(np.abs(ref.astype(np.float64) - cand))):.3g}): resizing/cropping or "
                                       "interpolation differ; fix: use the same resize, crop and interpolation")
    return Diagnosis("values", f"outputs differ (correlation {r:.3f}): {stats}; "
                               "fix: make the evaluation pipeline and the set's pipeline identical")
