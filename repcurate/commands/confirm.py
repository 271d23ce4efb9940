"""``repcurate confirm``: quantize (MCT, or ONNX Runtime) using the curated set and baseline sets, measure on
held-out data; with ``sizes``, at several set sizes (:mod:`repcurate.sizing`)."""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from repcurate import sizing, tasks
from repcurate.commands.params import ModelSpec, Runtime
from repcurate.commands.session import Session
from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.data.class_map import ClassMapArg, class_map_of
from repcurate.data.footprint import set_footprint, source_footprint
from repcurate.data.layouts import AUTO, FOLDER_LAYOUTS
from repcurate.data.scan import ImageRecord
from repcurate.data.sources import scan
from repcurate.embed.samples import iter_loaded
from repcurate.errors import UsageError
from repcurate.evaluate import DEFAULT_MAX_EVAL, EvalData, EvalSource
from repcurate.frameworks.base import Framework
from repcurate.frameworks.loading import ModelArg, PreprocessArg
from repcurate.io.atomic import json_bytes, write_directory
from repcurate.io.outputs import code_file, ensure_writable_target, refuse_overlap
from repcurate.options import MAX_BATCH_SIZE, MAX_COUNT, MAX_RANDOM_SETS, OptionError, require_int, require_seed, require_tpc
from repcurate.quantize.base import Quantizer
from repcurate.quantize.preflight import require_traceable
from repcurate.repset import RepresentativeSet, mct_data_gen
from repcurate.spec import spec_text
from repcurate.version import __version__

log = logging.getLogger("repcurate")


@dataclass(frozen=True)
class ConfirmPlan:
    """What one ``confirm`` runs, checked: the quantizer and its grid axes, the baseline sets, the sizes, where
    the best run is exported, and the runtime."""

    quantizer: Quantizer
    axes: dict[str, tuple[Any, ...]] | None
    random_sets: int
    first_n: bool
    weights_bits: int
    tpc: str
    seed: int
    sizes: list[int] | None
    tolerance: float
    export: Path | None
    overwrite: bool
    train_dir: str | Path | None
    runtime: Runtime

    @property
    def base_fields(self) -> dict[str, Any]:
        """The quantizer settings confirm fills from its own options (``weights_bits``; ``tpc`` for MCT)."""
        return {key: value for key, value in (("weights_bits", self.weights_bits), ("tpc", self.tpc))
                if key in self.quantizer.base_fields}


@dataclass
class Arm:
    """One calibration set: its name, its tensors and the files it came from."""

    name: str
    tensors: np.ndarray
    fingerprints: set[str]
    #: The set size this arm measures (``confirm(sizes=...)`` only).
    size: int | None = None


@dataclass
class ConfirmResult:
    """Float metrics, one row per (set, quantizer settings grid point) PTQ run, and the verdict in words."""

    metric: str
    float: dict[str, float]
    arms: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] | None = None

    kind: ClassVar[str] = "confirm"

    def passed(self) -> bool:
        """``confirm`` reports a comparison and never fails a gate (exit code 0)."""
        return True

    def summary(self) -> list[dict[str, Any]]:
        """Per point of the quantizer's settings grid (MCT: bias correction on, off): curated, random mean ± std
        and worst, first-N (with ``sizes``: at the largest size)."""
        rows = []
        sized = [a["size"] for a in self.arms if "size" in a]
        arms = [a for a in self.arms if a.get("size") == max(sized)] if sized else self.arms
        for point in _grid_points(arms):
            runs = [a for a in arms if _grid_point(a) == point]
            random = [a["metric"][self.metric] for a in runs if a["set"].startswith("random-")]
            curated = next((a["metric"][self.metric] for a in runs if a["set"] == "curated"), None)
            first_n = next((a["metric"][self.metric] for a in runs if a["set"] == "first-n"), None)
            worst = tasks.metric(self.metric).worst(random) if random else None
            row = {**point, "curated": curated, "first_n": first_n,
                   "random_mean": round(float(np.mean(random)), 6) if random else None,
                   "random_std": round(float(np.std(random)), 6) if random else None, "random_worst": worst,
                   "random_runs": len(random)}
            row["verdict"] = verdict_words(curated, random, self.metric)
            rows.append(row)
        return rows

    def size_curve(self) -> list[dict[str, Any]]:
        """With ``sizes``: per (settings-grid point, size) the curated score and the random sets' band (else [])."""
        arms = [a for a in self.arms if "size" in a]
        if not arms:
            return []
        ordered = [a for point in _grid_points(arms) for a in arms if _grid_point(a) == point]
        return sizing.curve(ordered, self.metric, _grid_point)

    def recommendations(self) -> list[dict[str, Any]]:
        """With ``sizes``: per settings-grid point, the smallest size within ``tolerance`` (:func:`sizing.recommend`)."""
        rows = self.size_curve()
        if not rows:
            return []
        axes = list(_grid_point(next(a for a in self.arms if "size" in a)))
        return sizing.recommend(rows, self.metric, self.settings.get("tolerance", sizing.DEFAULT_TOLERANCE), axes)

    def to_dict(self) -> dict[str, Any]:
        report = {"metric": self.metric, "float": self.float, "arms": self.arms, "summary": self.summary(),
                  "settings": self.settings, "metric_info": tasks.metric(self.metric).to_dict()}
        if self.export is not None:
            report["export"] = self.export
        if any("size" in a for a in self.arms):
            report["size_curve"] = self.size_curve()
            report["size_recommendation"] = self.recommendations()
        return report


def _grid_point(arm: dict[str, Any]) -> dict[str, Any]:
    """An arm's settings-grid point; confirm JSON written before arms carried ``settings`` had only
    ``bias_correction``."""
    return arm.get("settings") or {"bias_correction": arm["bias_correction"]}


def _grid_points(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct grid points of ``arms`` in a fixed order (their JSON text, descending: MCT's bias correction
    on before off), whatever order the caller listed them in."""
    texts = {json.dumps(_grid_point(a), sort_keys=True): _grid_point(a) for a in arms}
    return [texts[t] for t in sorted(texts, reverse=True)]


def _describe(point: dict[str, Any]) -> str:
    """``{"bias_correction": True}`` → ``bias correction on``."""
    words = {True: "on", False: "off"}
    return ", ".join(f"{k.replace('_', ' ')} {words.get(v, v) if isinstance(v, bool) else v}" for k, v in point.items())


def verdict_words(curated: float | None, random: list[float], metric: str) -> str:
    """'curated better' / 'no measurable difference' / 'curated worse', with margin and spread."""
    if curated is None or not random:
        return "no comparison"
    mean, std = float(np.mean(random)), float(np.std(random))
    how = tasks.metric(metric)
    margin = (1.0 if how.higher_is_better else -1.0) * (curated - mean)
    scale, unit = how.scale, how.unit_suffix
    spread = f"random {mean * scale:.2f} ± {std * scale:.2f}{unit} (min..max {min(random) * scale:.2f}..{max(random) * scale:.2f})"
    if abs(margin) <= max(std, 1e-9) or abs(margin) * scale < 0.1:
        return f"no measurable difference: curated {curated * scale:.2f} vs {spread}"
    word = "better" if margin > 0 else "worse"
    return f"curated {word} by {abs(margin) * scale:.2f}{unit}: {curated * scale:.2f} vs {spread}"


def _annotated_source(manifest: dict[str, Any], *, trusted: bool) -> dict[str, Any]:
    """How a set built from an annotated dataset read it (its split and, when the set is trusted, its COCO images
    folder), for the random arms."""
    objects = manifest.get("objects")
    if not isinstance(objects, dict):
        return {}
    images_dir = objects.get("images_dir") if trusted else None
    split = objects.get("split", "train")
    return {"split": split if isinstance(split, str) else "train",
            "images_dir": None if not isinstance(images_dir, str) else Path(images_dir)}


def training_source(manifest: dict[str, Any], train_dir: str | Path | None, *, trusted: bool, origin: str) -> Path:
    """Where the random and first-N sets are drawn from: ``train_dir`` when given; else the training source the
    manifest records, read only when the set is trusted (said on stderr), since a set is untrusted data (a tampered
    manifest naming ``/`` would scan the machine); else :class:`UsageError` with the fix."""
    if train_dir is not None:
        return Path(train_dir)
    recorded = manifest.get("train_source", manifest.get("root"))
    if not trusted:
        raise UsageError(f"{origin} records its training source as {recorded}; confirm draws random sets from a set's "
                         "recorded folder only for a set you built (signed) or trust; fix: pass --train-dir with the "
                         "folder, list or data.yaml the set was built from (or --trust-set, or --random-sets 0 "
                         "--no-first-n)")
    log.info("random sets are drawn from the training source the set records: %s", recorded)
    return Path(str(recorded))


def _draw(records: list[ImageRecord], root: Path, preprocessor: Any, count: int, order: np.ndarray) -> tuple[np.ndarray, set[str]]:
    """The first ``count`` records in ``order`` that decode and preprocess."""
    chosen: list[np.ndarray] = []
    fingerprints: set[str] = set()
    ordered = [records[i] for i in order]
    for item in iter_loaded(ordered, root, preprocessor, workers=2, lookahead=8):
        if item.failure is None and item.sample is not None:
            chosen.append(item.sample)
            fingerprints.add(item.record.fingerprint)
            if len(chosen) == count:
                break
    return np.stack(chosen).astype(np.float32), fingerprints


def _better(candidate: float, incumbent: float, metric: str) -> bool:
    return tasks.metric(metric).better(candidate, incumbent)


def _write_export(quantizer: Quantizer, framework: Framework, best: dict[str, Any], out: Path, *, data_gen: Any,
                  overwrite: bool) -> dict[str, Any]:
    """The best run's quantized model via the quantizer's exporter plus ``export.json``, written atomically."""
    model_file = f"model{quantizer.export_suffix(framework)}"
    description = {"file": model_file, "framework": framework.name, "quantizer": quantizer.name, "set": best["set"],
                   **best["grid_point"], "grid_point": best["grid_point"],
                   "metric": best["metric"], "selected_by": best["selected_by"], "repcurate_version": __version__,
                   **best["export_settings"]}
    write_directory(out, {model_file: lambda path: quantizer.export(framework, best["model"], path, data_gen),
                          "export.json": json_bytes(description)}, overwrite=overwrite)
    log.info("exported the %s set's quantized model (%s) to %s", best["set"], _describe(best["grid_point"]),
             out / model_file)
    return {"dir": str(out), **description}


def _grid_axes(quantizer: Quantizer, named: Mapping[str, Sequence[Any] | None]) -> dict[str, tuple[Any, ...]] | None:
    """The settings-grid axes the caller named, axis name → values (None: the quantizer's defaults); an axis the
    quantizer does not have, or a value it does not offer, is refused (exit 2) before any work."""
    given = {axis: values for axis, values in named.items() if values is not None}
    axes = {axis.name: axis for axis in quantizer.axes}
    for name, values in given.items():
        option = "--" + name.replace("_", "-")
        if name not in axes:
            raise OptionError(f"{option} ({name}) is not a setting of the {quantizer.name} quantizer (its grid: "
                              f"{', '.join(axes)}); fix: drop {option} or pass the quantizer that has it")
        axis = axes[name]
        if isinstance(values, (str, bytes)) or not values or not all(axis.offers(v) for v in values):
            raise OptionError(f"{option} ({name}): {values!r} is not a non-empty choice of "
                              f"{', '.join(map(str, axis.values))}; fix: pass e.g. {option} {axis.words(axis.values[:1])}")
    return {name: tuple(dict.fromkeys(values)) for name, values in given.items()} or None


def _named_axes(grid: Mapping[str, Sequence[Any]] | None, **keywords: Sequence[Any] | None) -> dict[str, Any]:
    """``grid`` (axis name → values) with the axes named by their own keyword (``bias_correction=``,
    ``calibration=``: the keyword API); an axis named both ways is refused (exit 2)."""
    named = dict(grid or {})
    for name, values in keywords.items():
        if values is not None:
            if named.get(name) is not None:
                raise OptionError(f"{name} is given both as a keyword and in grid; fix: pass it once")
            named[name] = values
    return named


def given_options(source: EvalSource, *, preprocess: Any, train_dir: str | Path | None, batch_size: int, device: str,
                  first_n: bool | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
                  trust_set: bool = False, class_map: str | dict[str, int] | None = None) -> dict[str, Any]:
    """The options as the caller gave them (``eval_source``: the folder / data.yaml / COCO JSON named; every
    registered quantizer's grid axis: the values named in ``grid``, else None; ``class_map``: its file's path, or the
    mapping a library caller passed; ``allow_outside_root`` only when COCO paths outside the image folder are read),
    recorded so the report can show a command line that reproduces the run
    (:func:`repcurate.report.html.confirm_command`)."""
    from repcurate.data.coco import outside_root_allowed
    from repcurate.quantize.registry import grid_axes as registered_axes

    named = dict(grid or {})
    axes = {axis.name: None if named.get(axis.name) is None else list(named[axis.name]) for axis in registered_axes()}
    return {"eval_source": Path(source.path).as_posix(), "split": source.split,
            "images_dir": None if source.images_dir is None else Path(source.images_dir).as_posix(),
            "preprocess": spec_text(preprocess), "postprocess": spec_text(source.postprocess), "task": source.task,
            "train_dir": None if train_dir is None else Path(train_dir).as_posix(), "max_eval": source.max_eval,
            "batch_size": batch_size, "device": device, "class_map": class_map, "first_n": first_n,
            **axes, "trust_set": bool(trust_set), **({"allow_outside_root": True} if outside_root_allowed() else {})}


def _check_options(*, random_sets: int, weights_bits: int, weight_bits_allowed: tuple[int, ...], tpc: str,
                   max_eval: int, seed: int, batch_size: int) -> None:
    """Every option checked before the set, the model or MCT is loaded (exit 2 naming the option; the grid axes:
    :func:`_grid_axes`)."""
    require_int(random_sets, "--random-sets", 0, MAX_RANDOM_SETS, keyword="random_sets")
    if weights_bits not in weight_bits_allowed or isinstance(weights_bits, bool):
        allowed = ", ".join(map(str, weight_bits_allowed))
        raise OptionError(f"--weights-bits (weights_bits): {weights_bits!r} is not one of {allowed}; "
                          f"fix: pass --weights-bits {allowed.replace(', ', ' or ')}")
    require_tpc(tpc)
    require_int(max_eval, "--max-eval", 1, MAX_COUNT, keyword="max_eval")
    require_seed(seed)
    require_int(batch_size, "--batch-size", 1, MAX_BATCH_SIZE, keyword="batch_size")


def confirm(
    repset: str | Path | RepresentativeSet,
    model: ModelArg,
    eval_dir: str | Path,
    *,
    random_sets: int = 3,
    first_n: bool = True,
    bias_correction: tuple[bool, ...] | None = None,
    weights_bits: int = 8,
    tpc: str = "imx500:1.0",
    preprocess: PreprocessArg = None,
    class_map: ClassMapArg = None,
    max_eval: int = DEFAULT_MAX_EVAL,
    seed: int = 0,
    batch_size: int = 32,
    export: str | Path | None = None,
    overwrite: bool = False,
    trust_set: bool = False,
    quantizer: str = "mct",
    calibration: tuple[str, ...] | None = None,
    sizes: list[int] | None = None,
    tolerance: float = sizing.DEFAULT_TOLERANCE,
    task: str | None = None,
    postprocess: Any = None,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    split: str = DEFAULT_EVAL_SPLIT,
    images_dir: str | Path | None = None,
    train_dir: str | Path | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
) -> ConfirmResult:
    """Quantize ``model`` (PyTorch or Keras) with ``quantizer`` once per (calibration set, point of the
    quantizer's settings grid) and measure each quantized model on held-out ``eval_dir`` images.

    ``grid`` names values of the quantizer's settings-grid axes (axis → values, e.g. ``{"bias_correction":
    (True,)}``; default: each axis's defaults); ``bias_correction`` and ``calibration`` are the same for those
    axes. ``quantizer="mct"`` (default): MCT PTQ; its grid is ``bias_correction`` (default on and off).
    ``quantizer="onnxruntime"``: ONNX Runtime static QDQ quantization of the model's ONNX export (PyTorch models
    only; ``weights_bits`` 8 or 4); its grid is ``calibration`` (default ``minmax``, ``entropy``,
    ``percentile``). With ``export``, the best run's quantized model is written there by the quantizer's
    exporter (MCT: ONNX for PyTorch, ``.keras`` for Keras; ONNX Runtime: the QDQ ``.onnx``). With ``sizes``
    (e.g. ``[16, 32, 64]``, each at most the set's size), the curated set's nested subset and ``random_sets``
    random sets of every size are quantized (no first-N arm) and the result carries the metric-vs-size curve
    and the smallest size within ``tolerance`` (in the metric's shown unit) of the largest
    (:mod:`repcurate.sizing`). Without ``preprocess`` the set's recorded preprocessing is used: when that is
    code the set names (not repcurate's own) it runs only with ``trust_set`` (else :class:`UsageError` up front).
    ``task`` names the registered task that scores the runs (default: detection with a ``postprocess``, else
    inferred from the outputs); ``postprocess`` (``file.py:fn`` or callable) turns a detector's outputs into boxes.
    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) is where the models run and are scored; MCT is told the
    same device. The preprocessed eval tensors are cached in ``cache_dir`` (default: the embedding cache's folder)
    unless ``use_cache`` is False. ``eval_dir``
    may be a YOLO ``data.yaml`` (its ``split``, default val), a COCO ``instances_*.json`` (``images_dir``: its
    images' folder) or a segmentation folder: detection is then scored against the boxes, segmentation against
    the masks (:func:`~repcurate.evaluate.load_eval`). The random and first-N sets are drawn from
    ``train_dir`` (a folder, list or annotated dataset, as ``build`` takes), else from the training source the set's
    manifest records — only when the set is trusted (``trust_set``, or built and signed by this user), since a
    tampered manifest could point anywhere (:func:`training_source`)."""
    from repcurate.quantize.registry import get as quantizer_named

    quantizer_obj = quantizer_named(quantizer)
    named_axes = _named_axes(grid, bias_correction=bias_correction, calibration=calibration)
    axes = _grid_axes(quantizer_obj, named_axes)
    _check_options(random_sets=random_sets, weights_bits=weights_bits, weight_bits_allowed=quantizer_obj.weight_bits,
                   tpc=tpc, max_eval=max_eval, seed=seed, batch_size=batch_size)
    size_list = sizing.check_sizes(sizes, tolerance) if sizes is not None else None
    if size_list is not None and export is not None:
        raise OptionError("--export cannot be combined with --sizes (which run would be exported?); "
                          "fix: run confirm once with --sizes, then with --export alone")
    runtime = Runtime(device=device, cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size).checked()
    class_map, class_map_given = class_map_of(class_map)
    plan = ConfirmPlan(quantizer=quantizer_obj, axes=axes, random_sets=random_sets, first_n=first_n,
                       weights_bits=weights_bits, tpc=tpc, seed=seed, sizes=size_list, tolerance=float(tolerance),
                       export=None if export is None else Path(export), overwrite=overwrite, train_dir=train_dir,
                       runtime=runtime)
    source = EvalSource(Path(eval_dir), split=split, images_dir=images_dir, task=task, postprocess=postprocess,
                            class_map=class_map, max_eval=max_eval)
    options = given_options(source, preprocess=preprocess, train_dir=train_dir, batch_size=batch_size,
                            device=runtime.device, first_n=first_n, grid=named_axes, trust_set=trust_set,
                            class_map=class_map_given)
    return run_confirm(repset, ModelSpec(model, preprocess=preprocess), source, plan, trust_set=trust_set,
                       options=options)


def run_confirm(repset: str | Path | RepresentativeSet, spec: ModelSpec, source: EvalSource, plan: ConfirmPlan,
                *, trust_set: bool, options: dict[str, Any]) -> ConfirmResult:
    """:func:`confirm` on checked options: open the session, draw the arms, load the eval data, run the grid."""
    if plan.export is not None:
        refuse_overlap(plan.export, source_footprint(source.path, images_dir=source.images_dir).inputs("eval")
                       + set_footprint(None if isinstance(repset, RepresentativeSet) else repset).inputs("set"),
                       option="--export")
        ensure_writable_target(plan.export, overwrite=plan.overwrite, option="--export", keep_sets=True)

    def on_set(loaded_set: RepresentativeSet) -> None:
        if plan.export is not None:
            refuse_overlap(plan.export, [("model file", code_file(spec.model)),
                                         *set_footprint(loaded_set.directory).inputs("set")], option="--export")
        if plan.sizes is not None:
            sizing.check_sizes_fit(plan.sizes, len(loaded_set), str(loaded_set.directory))

    def prepare(framework: Framework, model: Any) -> tuple[Any, list[str]]:
        if plan.export is not None:
            plan.quantizer.require_exporter(framework)
        return plan.quantizer.prepare(framework, model)

    session = Session.open(repset, spec, trust_set=trust_set, device=plan.runtime.device, prepare=prepare,
                           on_set=on_set)
    require_traceable(plan.quantizer, session.framework, session.float_model, session.repset.tensors,
                      session.loaded.spec)  # before any decoding
    pre = session.preprocessor()
    options = {**options, "trust_set": session.trusted}  # a set this user built and signed is trusted
    arms = _arms(session, pre, plan)
    evaluation = session.evaluate(source, pre, calibration_files=set().union(*(a.fingerprints for a in arms)),
                             seed=plan.seed, cache_dir=plan.runtime.cache)
    result = ConfirmResult(metric=evaluation.metric, float=evaluation.float_metrics(), arms=[],
                           settings=_settings(session, plan, evaluation, options))
    best = _run_grid(session, plan, arms, evaluation, result)
    if plan.export is not None and best is not None:
        best["selected_by"] = f"best {evaluation.metric} on the eval images"
        best["export_settings"] = {**plan.base_fields, "model": session.loaded.spec}
        result.export = _write_export(plan.quantizer, session.framework, best, plan.export, data_gen=best["data_gen"],
                                      overwrite=plan.overwrite)
    return result


def _arms(session: Session, pre: Any, plan: ConfirmPlan) -> list[Arm]:
    """The curated set, ``random_sets`` random draws and the first-N set from the training source (with sizes:
    every size's nested curated subset and each random draw's prefix, no first-N)."""
    manifest, loaded_set, size_list = session.manifest, session.repset, plan.sizes
    size = len(loaded_set)
    drawn = plan.random_sets > 0 or plan.first_n
    source_path = training_source(manifest, plan.train_dir, trusted=session.trusted, origin=session.origin) if drawn else None
    source = scan(source_path, layout=manifest["layout"] if manifest["layout"] in FOLDER_LAYOUTS else AUTO,
                  **_annotated_source(manifest, trusted=session.trusted)) if source_path is not None else None
    arms = [Arm("curated", loaded_set.tensors, {s["content_fingerprint"] for s in manifest["samples"]})]
    n = len(source.records) if source is not None else 0
    random_arms = []
    for k in range(plan.random_sets):
        assert source is not None  # drawn
        order = np.random.default_rng(np.random.SeedSequence([plan.seed, 0xA5, k])).permutation(n)
        tensors, fps = _draw(source.records, source.root, pre, size if size_list is None else size_list[-1], order)
        random_arms.append(Arm(f"random-{plan.seed + k}", tensors, fps))
    if size_list is not None:  # every size: the curated set's nested subset, then each random draw's prefix
        arms = [sized for s in size_list for sized in
                [Arm("curated", loaded_set.tensors[sizing.curated_subset(manifest, s)], arms[0].fingerprints, s)]
                + [Arm(r.name, r.tensors[:s], r.fingerprints, s) for r in random_arms]]
    else:
        arms += random_arms
    if plan.first_n and size_list is None and source is not None:
        tensors, fps = _draw(source.records, source.root, pre, size, np.arange(n))
        arms.append(Arm("first-n", tensors, fps))
    return arms


def _settings(session: Session, plan: ConfirmPlan, evaluation: EvalData, options: dict[str, Any]) -> dict[str, Any]:
    """The result's ``settings``: the quantizer's base fields, the run's sizes and sources, the options given."""
    from repcurate.frameworks.device import concrete_device

    settings: dict[str, Any] = {**plan.base_fields, "quantizer": plan.quantizer.name, "eval_images": len(evaluation.x),
                                "set_size": len(session.repset), "random_sets": plan.random_sets, "seed": plan.seed,
                                "framework": session.framework.name, "rewrites": session.rewrites,
                                "model": session.loaded.spec, "eval_dir": str(evaluation.root),
                                "task": evaluation.task.name, "device": concrete_device(session.device),
                                "reference": "ground truth" if evaluation.labels is not None else "float model",
                                "eval_skipped": [s.to_dict() for s in evaluation.skipped], "options": options}
    if plan.sizes is not None:
        settings.update({"sizes": plan.sizes, "tolerance": plan.tolerance})
    return settings


def _run_grid(session: Session, plan: ConfirmPlan, arms: list[Arm], evaluation: EvalData,
              result: ConfirmResult) -> dict[str, Any] | None:
    """One PTQ run per (arm, grid point), scored and appended to ``result``; the best run when exporting."""
    quantizer, framework, metric = plan.quantizer, session.framework, evaluation.metric
    points = quantizer.grid(quantizer.settings(**plan.base_fields), plan.axes)
    best: dict[str, Any] | None = None
    for arm in arms:
        gen = mct_data_gen(arm.tensors, plan.runtime.batch_size)
        for point in points:
            varied = {axis.name: getattr(point, axis.name) for axis in quantizer.axes}
            q_model, seconds = quantizer.quantize(framework, session.float_model, gen, point)
            metrics = evaluation.score(framework, q_model)
            at = "" if arm.size is None else f" at {arm.size}"
            log.info("PTQ %-12s %-20s %.1f s  %s %.4f", arm.name + at, _describe(varied), seconds, metric, metrics[metric])
            run = {"set": arm.name, **varied, "metric": metrics, "ptq_seconds": round(seconds, 2), "settings": varied}
            if arm.size is not None:
                run["size"] = arm.size
            result.arms.append(run)
            if plan.export is not None and (best is None or _better(metrics[metric], best["metric"][metric], metric)):
                best = {**run, "grid_point": varied, "model": q_model, "data_gen": gen}
            del q_model
    return best
