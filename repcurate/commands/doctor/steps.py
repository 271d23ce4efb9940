"""The doctor's troubleshooting steps: each detects its problem, measures candidate fixes with PTQ, and
hands the best configuration so far (the incumbent) to the next step."""
from __future__ import annotations

import contextlib
import io
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from repcurate.commands.doctor.culprits import find_culprits
from repcurate.commands.doctor.head import box_decoding
from repcurate.commands.doctor.lab import Incumbent, StepContext
from repcurate.commands.doctor.probe import NodeStats, activation_stats
from repcurate.commands.doctor.result import EDITOR_CAVEAT, Experiment, Finding
from repcurate.frameworks.base import Framework, LayerGraph, MCTGlue

log = logging.getLogger("repcurate")

#: z_threshold values swept (MCT's guide: typically 5–40).
Z_THRESHOLDS = (5.0, 10.0, 20.0, 40.0)
#: A node is heavy-tailed when its largest value is this many times its 99.9th percentile and …
TAIL_RATIO = 8.0
#: … lies at least this many standard deviations from the mean.
TAIL_MIN_Z = 5.0
#: Concatenated inputs whose ranges differ by this factor are unbalanced (MCT XQuant's default too).
CONCAT_RATIO = 16.0
#: Mixed precision gets this much more weights memory than uniform ``weights_bits``.
MIXED_PRECISION_HEADROOM = 1.25

#: The IMX500 target platform version that allows 16-bit activations on add / sub / mul / concat (1.0 does not).
HEAD_TPC_VERSION = 4.0
HEAD_STEP = "detection head (16-bit box decoding)"

CONCAT_ADVICE = ("model-side fixes (MCT's guide): rescale the large branch (fold the factor into the layer before the "
                 "concatenation and out of the layer after it), add a normalization layer to each branch before the "
                 "concatenation, or retrain so the branches share a range")


def _points(value: float) -> float:
    return round(value * 100, 2)


def _compare(incumbent: Incumbent, experiments: list[Experiment]) -> tuple[Experiment | None, float | None]:
    """The best measured experiment and its gain in points over the incumbent (None when nothing ran)."""
    measured = [e for e in experiments if e.metric is not None]
    if not measured:
        return None, None
    best = max(measured, key=lambda e: e.metric)  # type: ignore[arg-type, return-value]
    return best, _points(best.metric - incumbent.metric)  # type: ignore[operator]


def _significant(context: StepContext, trial: Any, incumbent: Any) -> bool:
    """The task's paired test on the same eval images (McNemar on a classifier's per-image hits)."""
    return context.lab.evaluation.significant(trial, incumbent)


def _gains_enough(context: StepContext, candidate: float | None, reference: float | None) -> bool:
    """Whether ``candidate`` beats ``reference`` by at least ``min_gain`` (both measured)."""
    return candidate is not None and reference is not None and candidate - reference >= context.min_gain - 1e-12


def _adopt(context: StepContext, incumbent: Incumbent, best: Experiment | None) -> Incumbent:
    """``best`` replaces the incumbent when it gains at least ``min_gain`` and the gain is significant."""
    if best is not None and _gains_enough(context, best.metric, incumbent.metric) and _significant(context, best.hits, incumbent.hits):
        return Incumbent(best.settings, best.metric, best.hits)  # type: ignore[arg-type]
    return incumbent


def _status(context: StepContext, incumbent: Incumbent, best: Experiment | None, new: Incumbent) -> str:
    """'fix found' when adopted; 'not significant' when it gained enough points but the task's paired test
    (McNemar for a classifier) says the images it won could be noise; else 'no gain'."""
    if new is not incumbent:
        return "fix found"
    if best is not None and _gains_enough(context, best.metric, incumbent.metric):
        return "not significant"
    return "no gain"


# ---------------------------------------------------------------- preflight and statistics (no PTQ)

def max_output_difference(framework: Framework, original: Any, rewritten: Any, tensors: np.ndarray,
                          batch_size: int = 32) -> float:
    """Largest absolute difference between two models' outputs on ``tensors`` (proves a rewrite exact)."""
    before, after = framework.outputs(original, tensors, batch_size), framework.outputs(rewritten, tensors, batch_size)
    return max((float(np.abs(a - b).max()) for a, b in zip(before, after) if a.size), default=0.0)


def preflight_step(model: Any, framework: Framework, tensors: np.ndarray) -> tuple[Finding | None, LayerGraph | None, Any]:
    """Step 2: rewrite what MCT cannot read (outputs proven unchanged), then read the graph as MCT does (PyTorch:
    trace with MCT's fx tracer). No finding when the framework has nothing to check (Keras)."""
    prepared, notes = framework.mct.prepare(model)
    result = framework.mct.preflight(prepared, tensors[: min(len(tensors), 8)])
    if result.name is None:
        return None, result.graph, prepared
    details: dict[str, Any] = {"rewrites": notes}
    if notes:
        details["rewrite_max_output_difference"] = max_output_difference(framework, model, prepared, tensors[:64])
    details.update(result.to_dict())
    if not result.ok:
        where = f" at {result.location}" if result.location else ""
        return (Finding(result.name, "problem", f"MCT cannot trace the model{where}: {result.error}",
                        details, advice=result.remedies), None, prepared)
    summary = f"the model traces with {result.reader}"
    if notes:
        summary += (f"; applied {'; '.join(notes)} — largest output difference on the set "
                    f"{details['rewrite_max_output_difference']:.2e}")
    return Finding(result.name, "nothing to fix" if not notes else "fix found", summary, details), result.graph, prepared


def graph_view(graph: LayerGraph, glue: MCTGlue, tensors: np.ndarray, batch_size: int
               ) -> tuple[dict[str, NodeStats], list[tuple[str, list[str]]], dict[str, str], Callable[[Any], list[str]]]:
    """Float activation statistics on the representative set, the concatenations, node kinds, and how to read
    the quantized nodes' names — from the framework's graph as MCT reads it."""
    return activation_stats(graph, tensors, batch_size), graph.concatenations(), graph.kinds(), glue.activation_nodes


def xquant_step(context: StepContext, batch_size: int) -> Finding | None:
    """Step 3: MCT's own XQuant troubleshooting on the baseline model: per-layer similarity and its judgements
    (PyTorch only in MCT 2.6)."""
    lab = context.lab
    try:
        troubleshoot_fn = lab.framework.mct.xquant()
        if troubleshoot_fn is None:  # MCT has no XQuant for this framework
            return None
        from model_compression_toolkit.xquant import XQuantConfig
    except ImportError as exc:
        return Finding("MCT XQuant", "skipped", f"XQuant is not available: {exc}")
    eval_x = lab.evaluation.x[:256]

    def validation() -> Any:
        for start in range(0, len(eval_x), batch_size):
            yield [eval_x[start:start + batch_size]]

    from model_compression_toolkit.logger import Logger

    mct_logger = logging.getLogger("Model Compression Toolkit")
    handlers, log_path, shutdown = list(mct_logger.handlers), Logger.LOG_PATH, Logger.__dict__["shutdown"]
    printed = io.StringIO()  # XQuant prints its log path, inside the temporary report folder removed below
    # XQuant ends with Logger.shutdown() = logging.shutdown(), which closes every handler of the process (a
    # caller's log files too); only the handlers it added are closed, below
    Logger.shutdown = staticmethod(lambda: None)
    try:
        with tempfile.TemporaryDirectory(prefix="repcurate-xquant-") as report_dir, contextlib.redirect_stdout(printed):
            similarity, troubleshoot = troubleshoot_fn(
                lab.model, lab.baseline_model, lab.data_gen, validation, XQuantConfig(report_dir=report_dir))
    except Exception as exc:  # noqa: BLE001 - experimental in MCT 2.6: report, do not fail the doctor
        return Finding("MCT XQuant", "failed", f"XQuant failed: {type(exc).__name__}: {str(exc)[:200]} (its report "
                       "folder is removed)")
    finally:
        for handler in [h for h in mct_logger.handlers if h not in handlers]:  # its log file is gone with the temp dir
            mct_logger.removeHandler(handler)
            handler.close()
        Logger.LOG_PATH = log_path  # not the removed folder
        Logger.shutdown = shutdown
        log.debug("XQuant printed: %s", printed.getvalue().strip())
    layers = similarity.get("intermediate_similarity_metrics_val", {})
    worst = sorted(layers.items(), key=lambda item: item[1].get("cs", 1.0))[:5]
    context.xquant_negative = [str(name) for name in troubleshoot.get("shift_negative_activation", [])]
    judged = {k: [str(x[0]) if isinstance(x, (list, tuple)) else str(x) for x in v] for k, v in troubleshoot.items()}
    worst_text = ", ".join(f"{name} (cos {m.get('cs', float('nan')):.3f})" for name, m in worst)
    summary = f"layers least similar to float on eval data: {worst_text or 'none'}"
    if judged:
        summary += "; XQuant flags " + "; ".join(f"{k}: {', '.join(v)}" for k, v in judged.items())
    details = {"output_similarity_val": similarity.get("output_similarity_metrics_val"),
               "worst_layers": [{"layer": str(n), **{k: float(v) for k, v in m.items()}} for n, m in worst],
               "troubleshoot": judged}
    return Finding("MCT XQuant", "measured", summary, details)


# ---------------------------------------------------------------- A/B steps

def bias_correction_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 8: bias correction on vs off, with the set's quality in view."""
    current = incumbent.settings.quantization_dict().get("weights_bias_correction", True)
    trial = context.lab.measure(incumbent.settings.with_quantization(weights_bias_correction=not current),
                                "bias correction")
    best, gain = _compare(incumbent, [trial])
    finding = Finding("bias correction", "no gain", "", experiments=[trial], gain=gain)
    state = "on" if current else "off"
    if gain is None:
        finding.status, finding.summary = "skipped", "not measured (time budget)"
        return finding, incumbent
    finding.summary = (f"turning it {'off' if current else 'on'} changes {context.lab.evaluation.metric} by {gain:+.2f} "
                       f"points (currently {state})")
    new = _adopt(context, incumbent, best)
    finding.status = _status(context, incumbent, best, new)
    if new is not incumbent and current and context.set_problem:
        finding.status = "problem"
        finding.advice.append("bias correction hurts with this representative set, and the check suite flags the "
                              "set: rebuild it (repcurate build) before turning bias correction off")
        return finding, incumbent
    return finding, new


def shift_negative_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 6: activations with negative outputs; A/B of shift-negative correction and its sub-settings."""
    negative = context.negative_activations()
    if not negative:
        return Finding("shift-negative correction", "nothing to fix", "no activation produces negative values"), incumbent
    details = {"layers": [{"layer": n, "kind": s.kind, "negative_fraction": round(s.negative_fraction, 4),
                           "min": round(s.minimum, 4), "negative_share_of_range": round(-s.minimum / s.range, 4)
                           if s.range > 0 else 0.0} for n, s in negative.items()]}
    names = ", ".join(f"{n} ({s.kind}, {s.negative_fraction:.0%} negative)" for n, s in list(negative.items())[:6])
    enabled = incumbent.settings.quantization_dict().get("shift_negative_activation_correction", True)
    flipped = context.lab.measure(incumbent.settings.with_quantization(shift_negative_activation_correction=not enabled),
                                  "shift-negative")
    experiments = [flipped]
    snc_on_metric = incumbent.metric if enabled else flipped.metric
    snc_off_metric = flipped.metric if enabled else incumbent.metric
    on_settings, on_hits, off_hits = ((incumbent.settings, incumbent.hits, flipped.hits) if enabled
                                      else (flipped.settings, flipped.hits, incumbent.hits))
    if _gains_enough(context, snc_on_metric, snc_off_metric) and _significant(context, on_hits, off_hits):
        for extra in ({"shift_negative_params_search": True}, {"shift_negative_threshold_recalculation": True},
                      {"shift_negative_ratio": 0.1}):
            experiments.append(context.lab.measure(on_settings.with_quantization(**extra), "shift-negative"))
    best, gain = _compare(incumbent, experiments)
    change = _points(snc_on_metric - snc_off_metric) if snc_on_metric is not None and snc_off_metric is not None else None
    summary = (f"{len(negative)} activations go negative: {names}; shift-negative correction on vs off: "
               + (f"{change:+.2f} points" if change is not None else "not measured (time budget)"))
    new = _adopt(context, incumbent, best)
    return Finding("shift-negative correction", _status(context, incumbent, best, new), summary, details, experiments,
                   gain), new


def outlier_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 5: heavy-tailed activations; a z_threshold sweep."""
    heavy = {n: s for n, s in context.stats.items() if s.tail_ratio >= TAIL_RATIO and s.max_z >= TAIL_MIN_Z}
    if not heavy:
        worst = max(context.stats.values(), key=lambda s: s.tail_ratio, default=None)
        detail = f" (largest max/p99.9 ratio {worst.tail_ratio:.1f} at {worst.name})" if worst else ""
        return Finding("outlier removal (z_threshold)", "nothing to fix", f"no heavy-tailed activations{detail}"), incumbent
    details: dict[str, Any] = {"layers": [s.to_dict() for s in heavy.values()]}
    top_z = max(s.max_z for s in heavy.values())
    values = [z for z in Z_THRESHOLDS if z < top_z]
    experiments = [context.lab.measure(incumbent.settings.with_quantization(z_threshold=z), "z_threshold") for z in values]
    details["not_swept"] = [z for z in Z_THRESHOLDS if z >= top_z]
    best, gain = _compare(incumbent, experiments)
    names = ", ".join(f"{n} (max {s.maximum:.3g} = {s.tail_ratio:.0f}× p99.9, z {s.max_z:.0f})" for n, s in list(heavy.items())[:5])
    summary = f"rare huge activations at {names}; swept z_threshold {', '.join(f'{z:g}' for z in values)}"
    if details["not_swept"]:
        summary += f" (≥ {min(details['not_swept']):g} removes nothing: the largest z-score is {top_z:.0f})"
    new = _adopt(context, incumbent, best)
    return Finding("outlier removal (z_threshold)", _status(context, incumbent, best, new), summary,
                   details, experiments, gain), new


def concat_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 7: concatenations of inputs whose ranges differ by ≥ 16×; A/B of concat_threshold_update."""
    unbalanced: list[dict[str, Any]] = []
    for name, inputs in context.concats:
        ranges = {i: max(abs(context.stats[i].maximum), abs(context.stats[i].minimum)) for i in inputs if i in context.stats}
        positive = {k: v for k, v in ranges.items() if v > 0}
        if len(positive) >= 2:
            ratio = max(positive.values()) / min(positive.values())
            if ratio >= CONCAT_RATIO:
                unbalanced.append({"concat": name, "inputs": {k: round(v, 4) for k, v in ranges.items()},
                                   "ratio": round(ratio, 1)})
    if not unbalanced:
        return Finding("unbalanced concatenation", "nothing to fix",
                       f"no concatenation mixes ranges ≥ {CONCAT_RATIO:g}× apart"), incumbent
    trial = context.lab.measure(incumbent.settings.with_quantization(concat_threshold_update=True), "concat")
    best, gain = _compare(incumbent, [trial])
    names = "; ".join(f"{u['concat']} joins {', '.join(f'{k} (|x| ≤ {v:.3g})' for k, v in u['inputs'].items())}: "
                      f"{u['ratio']:.0f}× apart" for u in unbalanced)
    new = _adopt(context, incumbent, best)
    return Finding("unbalanced concatenation", "fix found" if new is not incumbent else "problem", names,
                   {"concatenations": unbalanced}, [trial], gain, advice=[CONCAT_ADVICE]), new


def head_tpc(spec: str) -> str | None:
    """The target platform the head fix runs on: ``spec`` when it is an IMX500 version ≥ 4.0, IMX500 4.0 for an
    older IMX500 version, None for another device (no 16-bit activations on add / sub / mul / concat)."""
    device, _, version = spec.partition(":")
    if device != "imx500":
        return None
    try:
        return spec if float(version or "1.0") >= HEAD_TPC_VERSION else f"imx500:{HEAD_TPC_VERSION:.1f}"
    except ValueError:
        return None


def _largest(context: StepContext, names: tuple[str, ...] | list[str]) -> float | None:
    values = [max(abs(context.stats[n].maximum), abs(context.stats[n].minimum)) for n in names if n in context.stats]
    return max(values) if values else None


def head_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 4 (detectors): box decoding inside the model (anchor arithmetic after the DFL / the last convolution,
    beside sigmoid class scores) gets 16-bit activations through MCT's ``BitWidthConfig`` plus
    ``concat_threshold_update``, on IMX500 TPC 4.0 (MCT's YOLOv8 recipe)."""
    head = box_decoding(context.kinds, context.inputs)
    if head is None:
        return Finding(HEAD_STEP, "nothing to fix", "no box decoding inside the model (no anchor arithmetic after the "
                       "last convolution beside sigmoid class scores)"), incumbent
    quantized = set(context.activation_nodes(context.lab.baseline_model))
    nodes = tuple(n for n in head.decoding if n in quantized)
    details: dict[str, Any] = {"box_decoding_nodes": list(head.decoding), "class_score_nodes": list(head.scores),
                               "box_range": _largest(context, head.decoding), "score_range": _largest(context, head.scores)}
    if not nodes:
        return Finding(HEAD_STEP, "nothing to fix", f"MCT quantizes none of the box-decoding nodes "
                       f"{', '.join(head.decoding)}", details), incumbent
    tpc = head_tpc(incumbent.settings.tpc)
    names = ", ".join(nodes)
    if tpc is None:
        return Finding(HEAD_STEP, "skipped", f"box decoding at {names}, but the target platform "
                       f"{incumbent.settings.tpc} has no 16-bit activations there", details,
                       advice=[f"IMX500 TPC {HEAD_TPC_VERSION:.1f} allows 16-bit activations on the box decoding"]), incumbent
    settings = replace(incumbent.settings, manual_16bit=nodes, tpc=tpc).with_quantization(concat_threshold_update=True)
    try:
        trial = context.lab.measure(settings, "detection head", keep_model=True)
    except Exception as exc:  # noqa: BLE001 - MCT refuses 16 bits on a node its TPC does not allow: report it
        return Finding(HEAD_STEP, "failed", f"box decoding at {names}: MCT refused 16-bit activations there on {tpc}: "
                       f"{type(exc).__name__}: {str(exc)[:200]}", details), incumbent
    details.update({"tpc": tpc, "activation_16bit_nodes": list(nodes)})
    if context.lab.kept_model is not None and trial.metric is not None:
        bits = context.lab.framework.mct.activation_bits(context.lab.kept_model)
        details["activation_bits"] = {n: bits.get(n) for n in nodes}
        context.lab.kept_model = None
    best, gain = _compare(incumbent, [trial])
    box, score = details["box_range"], details["score_range"]
    ranges = f" (|x| ≤ {box:.3g} vs class scores ≤ {score:.3g})" if box is not None and score is not None else ""
    if gain is None:
        return Finding(HEAD_STEP, "skipped", f"box decoding at {names}{ranges}; not measured (time budget)", details,
                       [trial]), incumbent
    summary = (f"box decoding at {names}{ranges}: 16-bit activations there + concat_threshold_update on TPC {tpc} "
               f"change {context.lab.evaluation.metric} by {gain:+.2f} points")
    new = _adopt(context, incumbent, best)
    advice = [f"deploy with target platform {tpc} (16-bit activations on the box decoding)"] \
        if new is not incumbent and tpc != incumbent.settings.tpc else []
    return Finding(HEAD_STEP, _status(context, incumbent, best, new), summary, details, [trial], gain, advice=advice), new


# ---------------------------------------------------------------- when still short of the tolerance

def culprit_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 9: which layers' activation quantization costs the accuracy (MCT network editor, group testing)."""
    step = "culprit layers"
    if not context.short(incumbent.metric):
        return Finding(step, "nothing to fix", f"within {_points(context.tolerance)} points of float"), incumbent
    candidates = context.activation_nodes(context.lab.baseline_model)
    search = find_culprits(candidates, context.kinds, incumbent, context)
    finding = Finding(step, search.status, search.summary, search.details, search.experiments, search.gain,
                      advice=search.advice + [EDITOR_CAVEAT])
    return finding, incumbent  # a debugging setting never becomes the recommended configuration


def escalation_step(context: StepContext, incumbent: Incumbent) -> tuple[Finding, Incumbent]:
    """Step 10: mixed precision (more weights memory where it matters) and GPTQ, when PTQ misses the tolerance."""
    step = "escalation (mixed precision, GPTQ)"
    if not context.short(incumbent.metric):
        return Finding(step, "nothing to fix", f"within {_points(context.tolerance)} points of float"), incumbent
    lab = context.lab
    experiments = []
    notes = []
    bits = incumbent.settings.weights_bits
    if bits < 8:
        uniform = lab.framework.kernel_weights(lab.model) * bits / 8
        memory = math.floor(uniform * MIXED_PRECISION_HEADROOM)
        experiments.append(lab.measure(replace(incumbent.settings, weights_memory=float(memory)), "mixed precision"))
        notes.append(f"mixed precision: weights memory ≤ {memory} B ({MIXED_PRECISION_HEADROOM:.2f}× uniform {bits}-bit)")
    else:
        notes.append("mixed precision not tried: weights are already 8-bit, the TPC's widest; it can only trade memory down")
    experiments.append(lab.measure(replace(incumbent.settings, gptq_epochs=context.gptq_epochs), "GPTQ"))
    best, gain = _compare(incumbent, experiments)
    new = _adopt(context, incumbent, best)
    timing = "; ".join(f"{e.settings.label()}: {_points(e.metric) if e.metric is not None else e.skipped} in {e.seconds:.0f} s"
                       for e in experiments)
    summary = "; ".join(notes) + f" — {timing}"
    return Finding(step, _status(context, incumbent, best, new), summary, {"notes": notes}, experiments, gain), new
