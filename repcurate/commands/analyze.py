"""``repcurate analyze``: does the calibration set matter for this model + TPC + bits, and how many images are enough?

One float pass of MCT's own statistics collector over a seeded subsample of the pool (and a built set's samples),
then MCT's threshold selection and bias correction for many random subsets (:mod:`repcurate.analysis`).
PyTorch models only.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from repcurate import trust
from repcurate.analysis import mct_thresholds, stability
from repcurate.data.sources import scan
from repcurate.embed.pipeline import iter_loaded
from repcurate.errors import InputError, UsageError
from repcurate.frameworks.loading import ModelArg, PreprocessArg, as_preprocessor, load_model, load_recorded_preprocessor
from repcurate.quantize.mct import MCTQuantizer
from repcurate.quantize.registry import get as quantizer_named
from repcurate.repset import load

log = logging.getLogger(__name__)
MAX_IMAGES = 2000
MEMORY_BUDGET = 1 << 30  # bytes of per-image statistics


@dataclass
class AnalysisResult:
    """The analysis with its settings, sizes and timings (JSON-safe via :meth:`to_dict`)."""

    analysis: stability.Analysis
    settings: dict[str, Any]
    images: int
    statistics_bytes: int
    seconds: dict[str, float]
    skipped: int

    kind = "analysis"

    def passed(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "settings": self.settings, "images": self.images, "skipped_files": self.skipped,
                "statistics_bytes": self.statistics_bytes,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "analysis": self.analysis.to_dict()}


def _pool(source: Path, preprocessor: Any, limit: int, seed: int) -> tuple[np.ndarray, int]:
    """Up to ``limit`` images of ``source`` in a seeded order, preprocessed; and how many files failed."""
    records = scan(source).records
    if not records:
        raise InputError(f"{source}: no images found; fix: point --images at a folder of images")
    order = np.random.default_rng(np.random.SeedSequence([seed, 0xA7])).permutation(len(records))
    samples, failed = [], 0
    for item in iter_loaded([records[i] for i in order], source, preprocessor, workers=2, lookahead=8):
        if item.failure is not None or item.sample is None:
            failed += 1
            continue
        samples.append(item.sample)
        if len(samples) == limit:
            break
    if not samples:
        raise InputError(f"{source}: no image could be read and preprocessed; fix: check --preprocess")
    return np.stack(samples).astype(np.float32), failed


def analyze(*, model: ModelArg, images: Path | None = None, repset: Path | None = None,
            preprocess: PreprocessArg = None, tpc: str = "imx500:1.0", weights_bits: int = 8,
            bias_correction: bool = True, sizes: Sequence[int] = stability.SIZES, draws: int = 10, seed: int = 0,
            max_images: int = MAX_IMAGES, size: int | None = None, trust_set: bool = False,
            memory_budget: int = MEMORY_BUDGET) -> AnalysisResult:
    """Stability of MCT's thresholds and bias-correction terms over random calibration sets drawn from ``images``
    (or the set's source folder), for ``model`` quantized with ``tpc`` / ``weights_bits`` / bias correction; with
    ``repset`` its samples are compared with random sets of its size. ``size`` is the calibration size the verdict
    is for (default: the set's size, else the largest size tried). The per-image statistics stay within
    ``memory_budget`` bytes: the pool is cut to the images that fit (logged)."""
    quantizer = cast(MCTQuantizer, quantizer_named("mct"))  # MCT's own statistics: the quantizer registered as mct
    if weights_bits not in quantizer.weight_bits:
        raise UsageError(f"--weights-bits must be one of {quantizer.weight_bits}")
    if draws < 2 or max_images < 2:
        raise UsageError("--draws and --max-images must be at least 2")
    if images is None and repset is None:
        raise UsageError("give --images DIR (the pool) or --repset DIR (a built set, whose source is the pool)")
    built_tensors = None
    pre = as_preprocessor(preprocess) if preprocess is not None else None
    if repset is not None:
        loaded_set = load(repset)
        manifest = loaded_set.manifest
        origin = trust.manifest_label(loaded_set.directory)
        if pre is None:
            trust.require(origin, "preprocessing.spec", (manifest.get("preprocessing") or {}).get("spec"),
                          "--preprocess", trust_set=trust_set)
            pre = load_recorded_preprocessor(manifest, trust_set=trust_set, origin=origin, option="--preprocess")
        built_tensors = np.asarray(loaded_set.tensors, dtype=np.float32)
        if images is None:
            images = Path(manifest.get("train_source", manifest["root"]))
    if pre is None:
        raise UsageError("--preprocess is needed with --images (the preprocessing the model expects)")
    assert images is not None
    loaded = load_model(model)
    if loaded.framework.name != "torch":
        raise UsageError(f"analyze reads MCT's PyTorch graph; --model {loaded.spec} is a {loaded.framework.name} model")
    float_model, _notes = quantizer.prepare(loaded.framework, loaded.model)
    pool, skipped = _pool(images, pre, max_images, seed)
    if built_tensors is not None and built_tensors.shape[1:] != pool.shape[1:]:
        raise InputError(f"{repset}: samples are {built_tensors.shape[1:]} but --preprocess gives {pool.shape[1:]}; "
                         "fix: pass the set's own preprocessing")
    core = quantizer.settings(weights_bits=weights_bits, bias_correction=bias_correction).core_config(
        loaded.framework.kernel_types(float_model))
    per_image = mct_thresholds.bytes_per_image(float_model, pool[:1], core, quantizer.platform(tpc))
    fits = memory_budget // per_image - (0 if built_tensors is None else len(built_tensors))
    if fits < 2:
        raise UsageError(f"the statistics of this model take {per_image / 2**20:.1f} MiB per image; "
                         f"{memory_budget / 2**30:.1f} GiB holds too few images")
    if fits < len(pool):
        log.warning("statistics budget %.1f GiB: pool cut from %d to %d images (%.2f MiB each)",
                    memory_budget / 2**30, len(pool), fits, per_image / 2**20)
        pool = pool[:fits]
    everything = pool if built_tensors is None else np.concatenate([pool, built_tensors])
    started = time.perf_counter()
    collected = mct_thresholds.collect(float_model, (everything[i:i + 1] for i in range(len(everything))), core,
                                       quantizer.platform(tpc), first=everything[:1])
    collect_s = time.perf_counter() - started
    built = list(range(len(pool), len(everything))) if built_tensors is not None else None
    started = time.perf_counter()
    analysis = stability.analyze(collected, pool=len(pool), sizes=sizes, repeats=draws, seed=seed, chosen=size,
                                 built=built)
    settings = {"tpc": tpc, "weights_bits": weights_bits, "bias_correction": bias_correction, "model": loaded.spec,
                "images": str(images), "repset": None if repset is None else str(repset), "max_images": max_images,
                "memory_budget": memory_budget, "bytes_per_image_bound": per_image,
                "label": f"{tpc}, {weights_bits}-bit weights, bias correction {'on' if bias_correction else 'off'}"}
    return AnalysisResult(analysis, settings, len(everything), collected.nbytes(),
                          {"collect": collect_s, "analyse": time.perf_counter() - started}, skipped)
