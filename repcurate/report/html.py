"""``repcurate report``: one self-contained HTML page showing the set, the checks and the proof.

The page inlines every image (``data:`` URIs), has no script, and forbids any network fetch by its
own Content-Security-Policy, so it opens from a ``file://`` URL or a CI artifact exactly as written.
Same inputs give byte-identical HTML (no timestamps; deterministic thumbnails and figures).

Inputs: a ``repcurate build`` directory (required), and optionally the JSON reports of ``repcurate
check --format json`` and ``repcurate confirm --format json`` (or the result objects), and a
``doctor`` JSON, rendered generically::

    {"findings": [{"title": "...", "gain": 0.021, "message": "...", ...}],   # ranked by gain, largest first
     # (``repcurate doctor --format json`` writes step / status / summary / experiments / advice)
     "recommended_config": {...},                                             # shown as JSON
     "gain_unit": "top-1 points", "command": "repcurate doctor ..."}          # optional

A finding may use ``id`` or ``name`` instead of ``title`` and ``description`` instead of
``message``; its other keys are listed beside it.
"""
from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from repcurate import tasks, trust
from repcurate.commands.build import coverage_note
from repcurate.commands.confirm import DEFAULT_MAX_EVAL as CONFIRM_MAX_EVAL
from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.errors import InputError, MissingDependencyError, UsageError
from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME
from repcurate.frameworks.loading import PreprocessArg
from repcurate.io.atomic import write_text_atomic
from repcurate.io.safe_read import UnsafeFile, parse_json, read_bytes
from repcurate.options import DEFAULT_SIZE
from repcurate.quantize.registry import grid_axes
from repcurate.render import figures
from repcurate.render.grid_points import point_of, point_title, point_value, point_words
from repcurate.render.thumbnails import sample_thumbnails
from repcurate.report.suite_formats import PLOT_ONLY_DETAILS
from repcurate.repset import RepresentativeSet, load_manifest, load_projection, open_calibration
from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE
from repcurate.select.selection import DEFAULT_NEAR_DUPLICATE, DEFAULT_OUTLIER_Z
from repcurate.version import __version__

#: The swatch of an annotated set's background stratum (images without objects).
BACKGROUND_COLOUR = "#9e9e9e"
#: The defaults of confirm's and doctor's options, left out of a reconstructed command line.
DEFAULT_CONFIRM_MAX_EVAL = CONFIRM_MAX_EVAL
DEFAULT_DOCTOR_MAX_EVAL = 2000
DEFAULT_GPTQ_EPOCHS = 5

#: A section's input: a JSON file, its parsed content, or a result object with ``to_dict()``.
SectionInput = str | Path | dict[str, Any] | Any | None

TEMPLATE = "report.html.j2"
#: Skipped files listed at most (the counts by reason cover all of them).
MAX_SKIPPED_ROWS = 500
#: Characters of a check's details shown as JSON at most.
MAX_DETAILS_CHARS = 6000
_REQUIRED = {"check": ("verdict", "checks"), "confirm": ("metric", "arms"), "doctor": ("findings",)}
_PRODUCER = {"check": "repcurate check --format json", "confirm": "repcurate confirm --format json",
             "doctor": "repcurate doctor --format json"}


# ---------------------------------------------------------------------------- inputs
def _section_data(value: SectionInput, kind: str) -> tuple[dict[str, Any] | None, str | None]:
    """The parsed report of one section and the file it came from."""
    if value is None:
        return None, None
    source: str | None = None
    if isinstance(value, (str, Path)):
        source = str(value)
        try:
            data = parse_json(read_bytes(Path(value), "report"))
        except UnsafeFile as exc:
            if exc.reason == "not_found":
                raise InputError(f"{value}: not found; fix: pass the file written by `{_PRODUCER[kind]}`") from None
            raise InputError(f"{value}: cannot use the file ({exc.detail}); fix: pass the file written by "
                             f"`{_PRODUCER[kind]}`") from None
        except ValueError as exc:
            raise InputError(f"{value}: unreadable JSON ({exc}); fix: pass the file written by `{_PRODUCER[kind]}`") from None
    elif isinstance(value, dict):
        data = value
    elif callable(getattr(value, "to_dict", None)):
        data = value.to_dict()
    else:
        raise UsageError(f"{kind}={type(value).__name__}: not a report; fix: pass a JSON file path, a dict or the result object")
    missing = [k for k in _REQUIRED[kind] if not isinstance(data, dict) or k not in data]
    listed = _REQUIRED[kind][-1]
    if missing or not isinstance(data[listed], list):
        what = ", ".join(missing) if missing else f"{listed} (not a list)"
        raise InputError(f"{source or kind}: not a {kind} report (missing {what}); "
                         f"fix: pass the JSON written by `{_PRODUCER[kind]}`")
    return data, source


class _SetSource:
    """The set's manifest and verified tensors (the same checks as :func:`repcurate.load`, memory-mapped: the
    report reads a few rows of a possibly large file), and its projection read only when needed."""

    def __init__(self, repset: str | Path | RepresentativeSet) -> None:
        self.origin = trust.manifest_label(repset.directory if isinstance(repset, RepresentativeSet) else repset)
        if isinstance(repset, RepresentativeSet):
            self.directory: Path | None = None
            self.manifest = repset.manifest
            self._tensors: np.ndarray = repset.tensors
            self._projection = repset.projection
        else:
            self.directory = Path(repset)
            self.manifest = load_manifest(self.directory)
            self._tensors = open_calibration(self.directory, self.manifest, memory_map=True)
            self._projection = None

    @property
    def label(self) -> str:
        return str(self.directory) if self.directory is not None else "(in memory)"

    def tensors(self) -> np.ndarray:
        """The calibration tensors (row i ↔ sample i)."""
        return self._tensors

    def projection(self) -> tuple[dict[str, np.ndarray] | None, str]:
        if self._projection is not None:
            return self._projection, ""
        if self.directory is None:
            return None, "the in-memory set has no projection"
        try:
            self._projection = load_projection(self.directory, self.manifest)
        except InputError as exc:
            return None, str(exc)
        return self._projection, ""


# ---------------------------------------------------------------------------- formatting
def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric_text(value: float | None, metric: str) -> str:
    return tasks.metric(metric).format(value, missing="–")


def _class_name(label: str | None) -> str:
    return "(unlabelled)" if label is None else str(label)


def _coverage_row_name(key: str) -> str:
    """A coverage row's name: the unlabelled stratum (recorded as ``"null"`` by a flat build) as ``(unlabelled)``."""
    return "(unlabelled)" if key == "null" else key


def _details_json(details: dict[str, Any]) -> str:
    shown = {k: v for k, v in details.items() if k not in PLOT_ONLY_DETAILS}
    text = json.dumps(shown, indent=1, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DETAILS_CHARS else text[:MAX_DETAILS_CHARS] + "\n… (truncated; see the JSON report)"


def _spec_arg(flag: str, spec: Any) -> list[str]:
    if spec is None:
        return []
    return [flag, str(spec) if ":" in str(spec) or str(spec).endswith((".keras", ".h5", ".hdf5", ".pt")) else f"<{spec}>"]


def _eval_options(options: dict[str, Any], *, max_eval_default: int | None = None) -> list[str]:
    """The eval-side options a confirm / doctor run recorded as given (``settings.options``), as flags."""
    args: list[str] = []
    if options.get("split") not in (None, DEFAULT_EVAL_SPLIT):
        args += ["--split", str(options["split"])]
    if options.get("images_dir"):
        args += ["--images-dir", str(options["images_dir"])]
    if options.get("train_dir"):
        args += ["--train-dir", str(options["train_dir"])]
    args += _spec_arg("--preprocess", options.get("preprocess"))
    if options.get("task"):
        args += ["--task", str(options["task"])]
    args += _spec_arg("--postprocess", options.get("postprocess"))
    class_map = options.get("class_map")
    if isinstance(class_map, str):  # the file the command line named
        args += ["--class-map", class_map]
    elif class_map:  # a mapping a library caller passed: it has no file
        args += ["--class-map", "<JSON file: " + json.dumps(class_map, sort_keys=True) + ">"]
    if options.get("allow_outside_root"):
        args.append("--allow-outside-root")
    if max_eval_default is not None and options.get("max_eval") not in (None, max_eval_default):
        args += ["--max-eval", str(options["max_eval"])]
    if options.get("first_n") is False:
        args.append("--no-first-n")
    for axis in grid_axes():  # the settings-grid values named, in every registered quantizer's words
        if options.get(axis.name):
            args += [axis.option, axis.words(options[axis.name])]
    if options.get("device") not in (None, "auto"):
        args += ["--device", str(options["device"])]
    if options.get("trust_set"):  # the run used the code the set names (or the user's own signed set)
        args.append("--trust-set")
    return args


# ---------------------------------------------------------------------------- commands
def build_command(manifest: dict[str, Any], set_dir: str) -> str:
    """The ``repcurate build`` command line equivalent to the manifest's recorded parameters."""
    p = manifest.get("parameters", {})
    args = ["repcurate", "build", "--train-dir", manifest.get("train_source", manifest.get("root", "?")), "--out", set_dir]
    defaults = {"size": DEFAULT_SIZE, "balance": "uniform", "strategy": "kmeans", "seed": 0, "outlier_z": DEFAULT_OUTLIER_Z,
                "near_duplicate_distance": DEFAULT_NEAR_DUPLICATE}
    flags = {"size": "--size", "balance": "--balance", "strategy": "--strategy", "seed": "--seed",
             "outlier_z": "--outlier-z", "near_duplicate_distance": "--near-duplicate"}
    for key, flag in flags.items():
        if key in p and p[key] != defaults[key]:
            args += [flag, str(p[key])]
    if p.get("include_outliers"):
        args.append("--include-outliers")
    if p.get("match_dir"):
        args += ["--match-dir", p["match_dir"]]
    if manifest.get("layout") == "flat":
        args += ["--layout", "flat"]
    model = manifest.get("model", {})
    if model.get("spec") not in (None, DEFAULT_MODEL_NAME):
        args += _spec_arg("--model", model["spec"])
    if p.get("layer"):
        args += ["--layer", p["layer"]]
    pre = manifest.get("preprocessing", {}).get("spec")
    if pre not in (None, f"{DEFAULT_MODEL_NAME}:preprocess"):
        args += _spec_arg("--preprocess", pre)
    objects = manifest.get("objects")
    if isinstance(objects, dict):  # an annotated source: which split, where its images are, the background share
        if objects.get("split") not in (None, "train"):
            args += ["--split", str(objects["split"])]
        if objects.get("images_dir"):
            args += ["--images-dir", str(objects["images_dir"])]
        share = (objects.get("background") or {}).get("share")
        if share is not None and share != DEFAULT_BACKGROUND_SHARE:
            args += ["--background-share", str(share)]
    return shlex.join(args)


def check_command(report: dict[str, Any], set_dir: str) -> str:
    """The ``repcurate check`` command line equivalent to what the report records."""
    inputs = report.get("inputs", {})
    args = ["repcurate", "check", "--repset", inputs.get("repset") or set_dir,
            "--eval-dir", inputs.get("eval_source") or inputs.get("eval_dir", "?")]
    if inputs.get("split") not in (None, DEFAULT_EVAL_SPLIT):
        args += ["--split", str(inputs["split"])]
    if inputs.get("images_dir"):
        args += ["--images-dir", str(inputs["images_dir"])]
    args += _spec_arg("--eval-preprocess", inputs.get("eval_preprocess"))
    args += _spec_arg("--model", inputs.get("model"))
    if inputs.get("config"):
        args += ["--config", inputs["config"]]
    if inputs.get("seed"):
        args += ["--seed", str(inputs["seed"])]
    return shlex.join(args + ["--format", "json"])


def confirm_command(report: dict[str, Any], set_dir: str) -> str:
    """The ``repcurate confirm`` command line from the report's settings (JSON written before the
    settings recorded the model and the eval folder shows MODEL and EVAL_DIR for them)."""
    s = report.get("settings", {})
    options = s.get("options") or {}
    args = ["repcurate", "confirm", "--repset", set_dir, "--model", str(s.get("model", "MODEL")),
            "--eval-dir", str(options.get("eval_source") or s.get("eval_dir", "EVAL_DIR"))]
    args += _eval_options(options, max_eval_default=DEFAULT_CONFIRM_MAX_EVAL)
    for key, flag in (("random_sets", "--random-sets"), ("weights_bits", "--weights-bits"), ("tpc", "--tpc"), ("seed", "--seed")):
        if key in s:
            args += [flag, str(s[key])]
    if s.get("quantizer", "mct") != "mct":
        args += ["--quantizer", str(s["quantizer"])]
    if s.get("sizes"):
        args += ["--sizes", ",".join(map(str, s["sizes"])), "--tolerance", str(s.get("tolerance"))]
    return shlex.join(args + ["--format", "json"])


def doctor_command(report: dict[str, Any], set_dir: str) -> str:
    """The ``repcurate doctor`` command line from the report's settings (JSON written before the settings
    recorded the options as given shows the eval source the doctor recorded and the defaults)."""
    s = report.get("settings", {})
    options = s.get("options") or {}
    args = ["repcurate", "doctor", "--model", str(s.get("model", "MODEL")), "--repset", set_dir,
            "--eval-dir", str(options.get("eval_source") or s.get("eval_dir", "EVAL_DIR"))]
    args += _eval_options(options, max_eval_default=DEFAULT_DOCTOR_MAX_EVAL)
    for key, flag in (("tolerance_points", "--tolerance"), ("budget_minutes", "--budget-minutes"),
                      ("weights_bits", "--weights-bits"), ("tpc", "--tpc"), ("min_gain_points", "--min-gain"),
                      ("seed", "--seed")):
        if key in s:
            args += [flag, str(s[key])]
    if options.get("gptq_epochs") not in (None, DEFAULT_GPTQ_EPOCHS):
        args += ["--gptq-epochs", str(options["gptq_epochs"])]
    if options.get("run_checks") is False:
        args.append("--no-checks")
    return shlex.join(args + ["--format", "json"])


def _command(section: str, given: dict[str, str], data: dict[str, Any] | None, fallback: Callable[[], str],
             how: str = "equivalent, reconstructed from the recorded settings") -> dict[str, str]:
    """The command line behind a section: as run (``commands=``), as its JSON records it, or rebuilt."""
    if section in given:
        return {"text": given[section], "how": "as run"}
    if data is not None and isinstance(data.get("command"), str):
        return {"text": data["command"], "how": "recorded in the JSON"}
    return {"text": fallback(), "how": how}


# ---------------------------------------------------------------------------- sections
def _object_classes(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """An annotated set's per-object-class rows (the manifest's ``objects`` section: instances and images
    available and selected, the even share, unmet quotas, the class's box colour) and its background; ``None``
    for a set of class folders or a list."""
    objects = manifest.get("objects")
    if not isinstance(objects, dict) or not isinstance(objects.get("classes"), list):
        return None
    rows = objects["classes"]
    colours = figures.class_colours(max(1, len(rows)))
    unmet = set(objects.get("unmet_quotas") or [])
    return {"classes": [{**row, "colour": colours[i], "unmet": row.get("name") in unmet} for i, row in enumerate(rows)],
            "background": objects.get("background") or {}, "unmet": sorted(unmet)}


def _set_section(source: _SetSource) -> dict[str, Any]:
    manifest = source.manifest
    objects = _object_classes(manifest)
    box_colours = [row["colour"] for row in objects["classes"]] if objects else []
    thumbs = sample_thumbnails(manifest, source.tensors, box_colours=box_colours)
    by_label: dict[str | None, list[Any]] = {}
    for sample, thumb in zip(manifest.get("samples", []), thumbs):
        by_label.setdefault(sample.get("label"), []).append(thumb)
    classes = []
    colours = figures.class_colours(max(1, len(manifest.get("classes", []))))
    colour_of = {row["name"]: row["colour"] for row in objects["classes"]} if objects else {}
    for i, c in enumerate(manifest.get("classes", [])):
        colour = colours[i] if objects is None else colour_of.get(str(c["label"]).rpartition(":")[0] or str(c["label"]),
                                                                   BACKGROUND_COLOUR)
        classes.append({"name": c.get("name") or _class_name(c["label"]), "available": c["available"], "requested": c["requested"],
                        "quota": c["quota"], "selected": c.get("selected", len(by_label.get(c["label"], []))),
                        "unmet": c["available"] < c["requested"], "colour": colour,
                        "thumbs": by_label.get(c["label"], [])})
    skipped = manifest.get("skipped", [])
    return {
        "counts": manifest.get("counts", {}), "classes": classes, "parameters": manifest.get("parameters", {}),
        "empty_classes": manifest.get("empty_classes", []), "duplicates": manifest.get("duplicates", []),
        "skipped": skipped[:MAX_SKIPPED_ROWS], "skipped_total": len(skipped),
        "skipped_by_reason": sorted(Counter(s["reason"] for s in skipped).items()),
        "from_tensors": [t for t in thumbs if t.source == "tensor"],
        "root": manifest.get("root"), "objects": objects,
    }


def _coverage_section(source: _SetSource) -> dict[str, Any]:
    manifest = source.manifest
    coverage = manifest.get("coverage") or {}
    names = [c.get("name") or _class_name(c["label"]) for c in manifest.get("classes", [])]
    section: dict[str, Any] = {"coverage": coverage, "domain_match": manifest.get("domain_match"),
                               "bars": figures.coverage_bars(coverage) if coverage.get("curated") else None,
                               "per_class_rows": sorted((_coverage_row_name(k), v) for k, v in
                                                        ((coverage.get("curated") or {}).get("per_class", {})).items()),
                               "note": coverage_note(manifest) if coverage.get("curated") and coverage.get("random") else None}
    arrays, note = source.projection()
    section["projection_note"] = note
    if arrays is not None:
        info = manifest.get("projection") or {}
        ratios = info.get("explained_variance_ratio", [0.0, 0.0])
        section["overview"] = figures.projection_overview(arrays["xy"], arrays["label"], arrays["sample"], names, ratios)
        section["per_class"], drawn = figures.projection_per_class(arrays["xy_class"], arrays["label"], arrays["sample"], names)
        section["panels_drawn"], section["classes_total"] = drawn, len(names)
        section["points"], section["points_of"] = info.get("points", len(arrays["xy"])), info.get("of", len(arrays["xy"]))
    return section


def _checks_section(report: dict[str, Any], source: _SetSource, eval_preprocess: PreprocessArg, *,
                    trust_set: bool) -> dict[str, Any]:
    from repcurate.checks.base import ReportInputs
    from repcurate.checks.registry import REGISTRY as check_classes

    inputs = report.get("inputs") or {}
    panels = sorted({c.report_panel for c in check_classes.values() if c.report_panel is not None})
    view_inputs = ReportInputs(manifest=source.manifest, tensors=source.tensors, eval_preprocess=eval_preprocess,
                               trust_set=trust_set)
    cards = []
    for entry in report["checks"]:
        card = {"id": entry.get("id"), "status": entry.get("status", "error"), "value": _fmt(entry.get("value")),
                "message": entry.get("message", ""), "details": _details_json(entry.get("details") or {}),
                **dict.fromkeys(panels)}
        check_class = check_classes.get(card["id"])
        if card["status"] != "skipped" and check_class is not None and check_class.report_panel is not None:
            card[check_class.report_panel] = check_class.report_view(entry, view_inputs)  # the check draws its figure
        cards.append(card)
    note = None
    ran_on = inputs.get("repset")
    if ran_on and source.directory is not None and Path(ran_on).resolve() != source.directory.resolve():
        note = f"this check ran on {ran_on}, not on {source.directory}"
    return {"verdict": report["verdict"], "cards": cards, "inputs": inputs, "note": note,
            "counts": sorted(Counter(c["status"] for c in cards).items())}


def _confirm_section(report: dict[str, Any]) -> dict[str, Any]:

    metric = report["metric"]
    arms = report["arms"]
    sized = [a["size"] for a in arms if "size" in a]
    shown = [a for a in arms if a.get("size") == max(sized)] if sized else arms
    names = list(dict.fromkeys(a["set"] for a in shown))
    texts = {json.dumps(point_of(a), sort_keys=True): point_of(a) for a in shown}
    keys = sorted(texts, reverse=True)
    cells = {(a["set"], json.dumps(point_of(a), sort_keys=True)): a for a in shown}
    table = [{"set": name, "cells": [_metric_text(cells[(name, k)]["metric"].get(metric), metric) if (name, k) in cells else "–"
                                     for k in keys],
              "seconds": [_fmt(cells[(name, k)].get("ptq_seconds")) if (name, k) in cells else "–" for k in keys]}
             for name in names]
    axes = list(texts[keys[0]]) if keys else ["bias_correction"]
    summary = [{"point": point_words({a: r[a] for a in axes if a in r}), "value": point_value({a: r[a] for a in axes if a in r}),
                "curated": _metric_text(r.get("curated"), metric),
                "random": f"{_metric_text(r.get('random_mean'), metric)} ± {_metric_text(r.get('random_std'), metric)}",
                "worst": _metric_text(r.get("random_worst"), metric), "first_n": _metric_text(r.get("first_n"), metric),
                "verdict": r.get("verdict", "")} for r in report.get("summary", [])]
    how = tasks.metric(metric)
    unit = f" ({how.direction})"
    curve = report.get("size_curve") or []
    sizes = {"rows": [{"size": r["size"], "point": point_value({a: r[a] for a in axes if a in r}),
                       "curated": _metric_text(r.get("curated"), metric), "min": _metric_text(r.get("random_min"), metric),
                       "mean": f"{_metric_text(r.get('random_mean'), metric)} ± {_metric_text(r.get('random_std'), metric)}",
                       "max": _metric_text(r.get("random_max"), metric), "spread": _metric_text(r.get("random_spread"), metric)}
                      for r in sorted(curve, key=lambda r: r["size"])],
             "advice": [f"{point_words({a: r[a] for a in axes if a in r})}: "
                        + (f"recommended size {r['size']} — {r['reason']}" if r.get("size") is not None
                           else f"no size recommended — {r.get('reason', '')}") for r in report.get("size_recommendation", [])],
             "plot": figures.size_curve_plot(report) if curve else None} if curve else None
    export = report.get("export")
    return {"metric": metric, "unit": unit, "float": _metric_text((report.get("float") or {}).get(metric), metric),
            "settings": sorted((k, _fmt(v) if not isinstance(v, (list, dict)) else json.dumps(v))
                               for k, v in (report.get("settings") or {}).items()),
            "quantizer": (report.get("settings") or {}).get("quantizer", "mct"), "axes_title": point_title(dict.fromkeys(axes)),
            "point_columns": [point_value(texts[k]) for k in keys], "table": table, "summary": summary,
            "plot": figures.confirm_plot(report), "export": export, "sizes": sizes,
            "export_point": point_words(point_of(export)) if export else None}


def _doctor_section(report: dict[str, Any]) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    for i, f in enumerate(report["findings"]):
        if not isinstance(f, dict):
            f = {"message": str(f)}
        gain = f.get("gain")
        gain = float(gain) if isinstance(gain, (int, float)) and not isinstance(gain, bool) else None
        title = f.get("title") or f.get("step") or f.get("id") or f.get("name") or f"finding {i + 1}"
        message = f.get("message") or f.get("summary") or f.get("description") or ""
        if f.get("status"):
            title = f"{title} ({f['status']})"
        experiments = [(str(e.get("config", "")), "skipped: " + str(e["skipped"]) if e.get("skipped") else _fmt(e.get("metric")))
                       for e in f.get("experiments", []) if isinstance(e, dict)]
        advice = [str(a) for a in f.get("advice", [])]
        shown = ("title", "step", "id", "name", "gain", "message", "summary", "description", "status", "experiments",
                 "advice", "details")
        extra = [(k, _fmt(v) if not isinstance(v, (list, dict)) else json.dumps(v, sort_keys=True))
                 for k, v in sorted(f.items()) if k not in shown]
        findings.append({"title": str(title), "gain": gain, "gain_text": _fmt(gain), "message": str(message), "extra": extra,
                         "order": i, "experiments": experiments, "advice": advice})
    findings.sort(key=lambda f: (f["gain"] is None, -(f["gain"] or 0.0), f["order"]))
    recommended = report.get("recommended_config")
    python = recommended.get("python") if isinstance(recommended, dict) else None
    if isinstance(recommended, dict) and "json" in recommended:
        recommended = recommended["json"]
    return {"findings": findings, "gain_unit": report.get("gain_unit", ""), "python": python,
            "recommended": None if recommended is None else json.dumps(recommended, indent=2, sort_keys=True, ensure_ascii=False)}


# ---------------------------------------------------------------------------- page
@lru_cache(maxsize=1)
def _environment() -> Any:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("jinja2", purpose="the HTML report") from None
    return jinja2.Environment(loader=jinja2.PackageLoader("repcurate.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def report_html(
    repset: str | Path | RepresentativeSet,
    out: str | Path | None = None,
    *,
    check: SectionInput = None,
    confirm: SectionInput = None,
    doctor: SectionInput = None,
    eval_preprocess: PreprocessArg = None,
    commands: dict[str, str] | None = None,
    trust_set: bool = False,
) -> str:
    """Render the HTML report of a set (and of its check / confirm / doctor reports when given).

    ``check`` / ``confirm`` / ``doctor``: a JSON file, its parsed dict, or the result object.
    ``eval_preprocess`` re-runs the evaluation pipeline for the preprocessing-parity panel (default:
    the spec the check recorded, run only when it is repcurate's own or with ``trust_set``: the check JSON is
    data, and without the opt-in the panel shows the stored tensor and says why). The set is verified as
    :func:`repcurate.load` verifies it (:class:`InputError` when tampered), and a sample's file is shown only
    when its path stays below the set's root and its content matches the recorded fingerprint. ``commands``: the command line that produced a section
    (``build`` / ``check`` / ``confirm`` / ``doctor``), shown instead of the reconstructed one.
    With ``out`` the page is written there atomically. Returns the HTML.
    """
    source = _SetSource(repset)
    manifest = source.manifest
    given = dict(commands or {})
    set_dir = source.label
    sections: dict[str, Any] = {}
    check_data, check_file = _section_data(check, "check")
    confirm_data, confirm_file = _section_data(confirm, "confirm")
    doctor_data, doctor_file = _section_data(doctor, "doctor")
    provenance = [{"section": "set and coverage", "file": str(Path(set_dir) / "manifest.json") if source.directory else set_dir,
                   "command": _command("build", given, None, lambda: build_command(manifest, set_dir))}]
    sections["set"] = _set_section(source)
    sections["coverage"] = _coverage_section(source)
    if check_data is not None:
        sections["checks"] = _checks_section(check_data, source, eval_preprocess, trust_set=trust_set)
        provenance.append({"section": "checks", "file": check_file or "(in memory)",
                           "command": _command("check", given, check_data, lambda: check_command(check_data, set_dir))})
    if confirm_data is not None:
        sections["confirm"] = _confirm_section(confirm_data)
        provenance.append({"section": "confirm", "file": confirm_file or "(in memory)",
                           "command": _command("confirm", given, confirm_data, lambda: confirm_command(confirm_data, set_dir),
                                               "reconstructed from the options the JSON records")})
    if doctor_data is not None:
        sections["doctor"] = _doctor_section(doctor_data)
        provenance.append({"section": "doctor", "file": doctor_file or "(in memory)",
                           "command": _command("doctor", given, doctor_data, lambda: doctor_command(doctor_data, set_dir))})
    calibration = manifest.get("calibration") or {}
    fingerprints = [("model", f"{manifest.get('model', {}).get('spec')} · {manifest.get('model', {}).get('fingerprint')}"),
                    ("embedding preprocessing", f"{manifest.get('embedding_preprocessing', {}).get('spec')} · "
                                                f"{manifest.get('embedding_preprocessing', {}).get('fingerprint')}"),
                    ("set preprocessing", f"{manifest.get('preprocessing', {}).get('spec')} · "
                                          f"{manifest.get('preprocessing', {}).get('fingerprint')}"),
                    ("calibration.npz sha256", calibration.get("sha256", "–")),
                    ("tensors", f"{calibration.get('shape')} {calibration.get('dtype')}")]
    page = _environment().get_template(TEMPLATE).render(
        title=f"repcurate report — {Path(set_dir).name or set_dir}", version=__version__,
        built_with=(manifest.get("tool") or {}).get("version", "?"), seed=manifest.get("seed"), set_dir=set_dir,
        fingerprints=fingerprints, provenance=provenance, s=sections,
        provenance_by_section={p["section"]: p["command"] for p in provenance})
    if out is not None:
        write_text_atomic(Path(out), page)
    return page
