"""``repcurate confirm``: quantize with MCT using the curated set and baseline sets, measure on held-out data."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repcurate.data.scan import ImageRecord, scan
from repcurate.embed.loading import ModelArg, PreprocessArg, as_preprocessor, load_model, load_recorded_preprocessor
from repcurate.embed.pipeline import iter_loaded, load_tensors
from repcurate.errors import InputError, UsageError
from repcurate.io.atomic import ensure_writable_target, json_bytes, write_directory
from repcurate.quantize.metrics import float_metrics, score
from repcurate.repset import RepresentativeSet, load, mct_data_gen

if TYPE_CHECKING:
    from repcurate.quantize.mct_adapter import PTQBackend

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
    export: dict[str, Any] | None = None

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
        report = {"metric": self.metric, "float": self.float, "arms": self.arms, "summary": self.summary(),
                  "settings": self.settings}
        if self.export is not None:
            report["export"] = self.export
        return report


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


def _class_indices(labels: list[str | None], manifest: dict[str, Any], class_map: dict[str, int] | None,
                   outputs: int) -> np.ndarray | None:
    """The model's class index of every eval image, or None when the eval folders do not name the
    model's classes (then fidelity to the float model is measured instead)."""
    if any(lab is None for lab in labels):
        return None
    if class_map is not None:
        missing = sorted({lab for lab in labels if lab not in class_map})
        if missing:
            raise UsageError(f"--class-map has no index for eval classes {missing[:5]}")
        indices = np.array([class_map[lab] for lab in labels])
        if indices.max() >= outputs or indices.min() < 0:
            raise UsageError(f"--class-map has indices outside the model's {outputs} outputs")
        return indices
    if all(lab.isdigit() for lab in labels):  # type: ignore[union-attr]
        indices = np.array([int(lab) for lab in labels])  # type: ignore[arg-type]
        return indices if indices.max() < outputs else None
    names = sorted(c["label"] for c in manifest.get("classes", []) if c["label"] is not None)
    if set(labels) <= set(names) and len(names) == outputs:  # ImageFolder: index = position in sorted names
        return np.array([names.index(lab) for lab in labels])  # type: ignore[arg-type]
    log.info("eval folders do not name the model's %d classes (pass --class-map); measuring fidelity to "
             "the float model instead", outputs)
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


def _better(candidate: float, incumbent: float, metric: str) -> bool:
    return candidate < incumbent if metric == "kl" else candidate > incumbent


def _write_export(backend: PTQBackend, best: dict[str, Any], out: Path, *, data_gen: Any, overwrite: bool) -> dict[str, Any]:
    """The best run's quantized model via MCT's exporter plus ``export.json``, written atomically."""
    from repcurate import __version__

    model_file = f"model{backend.export_suffix}"
    description = {"file": model_file, "framework": backend.framework, "set": best["set"],
                   "bias_correction": best["bias_correction"], "metric": best["metric"],
                   "selected_by": best["selected_by"], "repcurate_version": __version__, **best["settings"]}
    write_directory(out, {model_file: lambda path: backend.export(best["model"], path, data_gen),
                          "export.json": json_bytes(description)}, overwrite=overwrite)
    log.info("exported the %s set's quantized model (bias correction %s) to %s", best["set"],
             "on" if best["bias_correction"] else "off", out / model_file)
    return {"dir": str(out), **description}


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
    export: str | Path | None = None,
    overwrite: bool = False,
) -> ConfirmResult:
    """Quantize ``model`` (PyTorch or Keras) with MCT once per (calibration set, bias correction) and
    measure each quantized model on held-out ``eval_dir`` images. With ``export``, the best run's
    quantized model is written there by MCT's exporter (ONNX for PyTorch, ``.keras`` for Keras)."""
    from repcurate.quantize.mct_adapter import backend_for, target_platform

    if export is not None:
        ensure_writable_target(Path(export), overwrite=overwrite)
    loaded_set = repset if isinstance(repset, RepresentativeSet) else load(repset)
    manifest = loaded_set.manifest
    loaded = load_model(model)
    backend = backend_for(loaded.framework)
    if export is not None:
        backend.require_exporter()
    float_model, rewrites = backend.prepare(loaded.model)
    for note in rewrites:
        log.info("%s", note)
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
    try:
        f_logits = backend.outputs(float_model, eval_x)
    except Exception as exc:
        raise InputError(f"{loaded.spec} failed on eval tensors of shape {eval_x.shape[1:]} "
                         f"({type(exc).__name__}: {str(exc)[:200]}); fix: pass the model's own --preprocess "
                         "(Keras models take channels-last input)") from exc
    if f_logits.ndim != 2:
        raise InputError(f"{loaded.spec} returns outputs of shape {f_logits.shape[1:]}; confirm needs one score "
                         "vector per image (a classifier)")
    labels = _class_indices([r.label for r in records], manifest, class_map, f_logits.shape[1])
    metric = "top1" if labels is not None else "agreement"
    settings = {"weights_bits": weights_bits, "tpc": tpc, "eval_images": len(records), "set_size": size,
                "random_sets": random_sets, "seed": seed, "framework": backend.framework, "rewrites": rewrites,
                "model": loaded.spec, "eval_dir": str(eval_source.root)}
    result = ConfirmResult(metric=metric, float=float_metrics(f_logits, labels), arms=[], settings=settings)
    platform = target_platform(tpc)
    best: dict[str, Any] | None = None
    for arm in arms:
        gen = mct_data_gen(arm.tensors, batch_size)
        for bc in bias_correction:
            q_model, seconds = backend.quantize(float_model, gen, bias_correction=bc, weights_bits=weights_bits,
                                                tpc=platform)
            metrics = score(backend.outputs(q_model, eval_x), f_logits, labels)
            log.info("PTQ %-12s bias correction %-3s %.1f s  %s %.4f", arm.name, "on" if bc else "off", seconds,
                     metric, metrics[metric])
            run = {"set": arm.name, "bias_correction": bc, "metric": metrics, "ptq_seconds": round(seconds, 2)}
            result.arms.append(run)
            if export is not None and (best is None or _better(metrics[metric], best["metric"][metric], metric)):
                best = {**run, "model": q_model, "data_gen": gen}
            del q_model
    if export is not None and best is not None:
        best["selected_by"] = f"best {metric} on the eval images"
        best["settings"] = {"weights_bits": weights_bits, "tpc": tpc, "model": loaded.spec}
        result.export = _write_export(backend, best, Path(export), data_gen=best["data_gen"], overwrite=overwrite)
    return result
