"""``repcurate confirm``: quantize with MCT using the curated set and baseline sets, measure on held-out data."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.data.scan import ImageRecord, scan
from repcurate.embed.loading import ModelArg, PreprocessArg, as_preprocessor, load_model, load_recorded_preprocessor
from repcurate.embed.pipeline import iter_loaded, load_tensors
from repcurate.errors import InputError, UsageError
from repcurate.quantize.metrics import float_metrics, score
from repcurate.quantize.rewrite import make_mct_compatible
from repcurate.repset import RepresentativeSet, load, mct_data_gen

log = logging.getLogger("repcurate")

#: Evaluation images used at most (seeded sample), to bound the cost of every arm.
DEFAULT_MAX_EVAL = 2000


@dataclass
class Arm:
    """One calibration set: its name, its tensors and the files it came from."""

    name: str
    tensors: np.ndarray
    fingerprints: set[str]


@dataclass
class ConfirmResult:
    """Float metrics, one row per (set, bias correction) PTQ run, and the verdict in words."""

    metric: str
    float: dict[str, float]
    arms: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """Per bias-correction setting: curated, random mean ± std and worst, first-N."""
        rows = []
        for bc in sorted({a["bias_correction"] for a in self.arms}, reverse=True):
            runs = [a for a in self.arms if a["bias_correction"] == bc]
            random = [a["metric"][self.metric] for a in runs if a["set"].startswith("random-")]
            curated = next((a["metric"][self.metric] for a in runs if a["set"] == "curated"), None)
            first_n = next((a["metric"][self.metric] for a in runs if a["set"] == "first-n"), None)
            better_is_lower = self.metric == "kl"
            worst = (max(random) if better_is_lower else min(random)) if random else None
            row = {"bias_correction": bc, "curated": curated, "first_n": first_n,
                   "random_mean": round(float(np.mean(random)), 6) if random else None,
                   "random_std": round(float(np.std(random)), 6) if random else None, "random_worst": worst,
                   "random_runs": len(random)}
            row["verdict"] = verdict_words(curated, random, self.metric)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "float": self.float, "arms": self.arms, "summary": self.summary(),
                "settings": self.settings}


def verdict_words(curated: float | None, random: list[float], metric: str) -> str:
    """'curated better' / 'no measurable difference' / 'curated worse', with margin and spread."""
    if curated is None or not random:
        return "no comparison"
    mean, std = float(np.mean(random)), float(np.std(random))
    sign = -1.0 if metric == "kl" else 1.0
    margin = sign * (curated - mean)
    scale = 100.0 if metric in ("top1", "agreement") else 1.0
    unit = " points" if scale == 100.0 else ""
    spread = f"random {mean * scale:.2f} ± {std * scale:.2f}{unit} (min..max {min(random) * scale:.2f}..{max(random) * scale:.2f})"
    if abs(margin) <= max(std, 1e-9) or abs(margin) * scale < 0.1:
        return f"no measurable difference: curated {curated * scale:.2f} vs {spread}"
    word = "better" if margin > 0 else "worse"
    return f"curated {word} by {abs(margin) * scale:.2f}{unit}: {curated * scale:.2f} vs {spread}"


def _class_indices(labels: list[str | None], manifest: dict[str, Any], class_map: dict[str, int] | None) -> np.ndarray | None:
    if any(lab is None for lab in labels):
        return None
    if class_map is not None:
        missing = sorted({lab for lab in labels if lab not in class_map})
        if missing:
            raise UsageError(f"--class-map has no index for eval classes {missing[:5]}")
        return np.array([class_map[lab] for lab in labels])
    if all(lab.isdigit() for lab in labels):  # type: ignore[union-attr]
        return np.array([int(lab) for lab in labels])  # type: ignore[arg-type]
    names = sorted(c["label"] for c in manifest.get("classes", []) if c["label"] is not None)
    if set(labels) <= set(names):  # ImageFolder convention: index = position in sorted class names
        return np.array([names.index(lab) for lab in labels])  # type: ignore[arg-type]
    return None


def _draw(records: list[ImageRecord], root: Path, preprocessor: Any, count: int, order: np.ndarray) -> tuple[np.ndarray, set[str]]:
    """The first ``count`` records in ``order`` that decode and preprocess."""
    chosen, fingerprints = [], set()
    ordered = [records[i] for i in order]
    for item in iter_loaded(ordered, root, preprocessor, workers=2, lookahead=8):
        if item.failure is None:
            chosen.append(item.sample)
            fingerprints.add(item.record.fingerprint)
            if len(chosen) == count:
                break
    return np.stack(chosen).astype(np.float32), fingerprints


def confirm(
    repset: str | Path | RepresentativeSet,
    model: ModelArg,
    eval_dir: str | Path,
    *,
    random_sets: int = 3,
    first_n: bool = True,
    bias_correction: tuple[bool, ...] = (True, False),
    weights_bits: int = 8,
    tpc: str = "imx500:1.0",
    preprocess: PreprocessArg = None,
    class_map: dict[str, int] | None = None,
    max_eval: int = DEFAULT_MAX_EVAL,
    seed: int = 0,
    batch_size: int = 32,
) -> ConfirmResult:
    """Quantize ``model`` with MCT once per (calibration set, bias correction) and measure each
    quantized model on held-out ``eval_dir`` images. PyTorch models (Keras: not yet)."""
    from repcurate.quantize.mct_adapter import quantize_torch, target_platform, torch_logits

    loaded_set = repset if isinstance(repset, RepresentativeSet) else load(repset)
    manifest = loaded_set.manifest
    loaded = load_model(model)
    if loaded.framework != "torch":
        raise UsageError("confirm supports PyTorch models in this version; Keras support is planned")
    float_model, rewrites = make_mct_compatible(loaded.model.eval())
    if rewrites:
        log.info("replaced %d static-same-padding convolutions for MCT (outputs unchanged)", rewrites)
    pre = as_preprocessor(preprocess) if preprocess is not None else None
    if pre is None:
        pre = load_recorded_preprocessor(manifest)
        if pre is None:
            raise UsageError("the set's preprocessing cannot be loaded; pass --preprocess")
    size = len(loaded_set)

    source = scan(Path(manifest.get("train_source", manifest["root"])),
                  layout=manifest["layout"] if manifest["layout"] in ("classes", "flat") else "auto")
    arms = [Arm("curated", loaded_set.tensors, {s["content_fingerprint"] for s in manifest["samples"]})]
    n = len(source.records)
    for k in range(random_sets):
        order = np.random.default_rng(np.random.SeedSequence([seed, 0xA5, k])).permutation(n)
        tensors, fps = _draw(source.records, source.root, pre, size, order)
        arms.append(Arm(f"random-{seed + k}", tensors, fps))
    if first_n:
        tensors, fps = _draw(source.records, source.root, pre, size, np.arange(n))
        arms.append(Arm("first-n", tensors, fps))

    eval_source = scan(Path(eval_dir))
    calibration_files = set().union(*(a.fingerprints for a in arms))
    overlap = [r.path for r in eval_source.records if r.fingerprint in calibration_files]
    if overlap:
        raise InputError(f"{eval_source.root}: {len(overlap)} eval files are also calibration images "
                         f"(e.g. {overlap[0]}); fix: evaluate on data disjoint from the training directory")
    records = eval_source.records
    if len(records) > max_eval:
        keep = np.sort(np.random.default_rng(seed).choice(len(records), max_eval, replace=False))
        records = [records[i] for i in keep]
    if not records:
        raise InputError(f"{eval_source.root}: no eval images; fix: pass a folder of held-out images")
    eval_x = load_tensors(records, eval_source.root, pre)
    labels = _class_indices([r.label for r in records], manifest, class_map)
    metric = "top1" if labels is not None else "agreement"
    f_logits = torch_logits(float_model, eval_x)
    result = ConfirmResult(metric=metric, float=float_metrics(f_logits, labels), arms=[],
                           settings={"weights_bits": weights_bits, "tpc": tpc, "eval_images": len(records),
                                     "set_size": size, "random_sets": random_sets, "seed": seed})
    platform = target_platform(tpc)
    for arm in arms:
        gen = mct_data_gen(arm.tensors, batch_size)
        for bc in bias_correction:
            q_model, seconds = quantize_torch(float_model, gen, bias_correction=bc, weights_bits=weights_bits, tpc=platform)
            metrics = score(torch_logits(q_model, eval_x), f_logits, labels)
            log.info("PTQ %-12s bias correction %-3s %.1f s  %s %.4f", arm.name, "on" if bc else "off", seconds,
                     metric, metrics[metric])
            result.arms.append({"set": arm.name, "bias_correction": bc, "metric": metrics, "ptq_seconds": round(seconds, 2)})
    return result
