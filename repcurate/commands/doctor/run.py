"""``repcurate doctor``: MCT's troubleshooting guide, run automatically, every recommendation measured."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from repcurate import tasks
from repcurate.commands.confirm import given_options
from repcurate.commands.doctor import steps
from repcurate.commands.doctor.lab import Incumbent, Lab, StepContext
from repcurate.commands.doctor.result import DoctorResult, Finding
from repcurate.commands.params import ModelSpec, Runtime
from repcurate.commands.session import Session
from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.data.class_map import ClassMapArg, class_map_of
from repcurate.errors import UsageError
from repcurate.evaluate import DEFAULT_MAX_EVAL, EvalData, EvalSource
from repcurate.frameworks.device import concrete_device
from repcurate.frameworks.loading import ModelArg, PreprocessArg
from repcurate.options import MAX_BATCH_SIZE, MAX_COUNT, MAX_GPTQ_EPOCHS, require_int, require_number, require_seed, require_tpc
from repcurate.quantize.mct import MCTQuantizer, MCTSettings
from repcurate.quantize.registry import get as quantizer_named
from repcurate.repset import RepresentativeSet, mct_data_gen

log = logging.getLogger("repcurate")


@dataclass(frozen=True)
class DoctorPlan:
    """What one ``doctor`` run may spend and must reach: MCT's default settings, the tolerance and minimum gain
    (metric points), the PTQ budget, GPTQ's epochs, whether the check suite runs, the seed and the runtime."""

    quantizer: MCTQuantizer
    base: MCTSettings
    tolerance: float
    budget_minutes: float
    min_gain: float
    gptq_epochs: int
    run_checks: bool
    seed: int
    runtime: Runtime

def _check_finding(repset: RepresentativeSet, eval_dir: Path, model: ModelArg, preprocess: PreprocessArg,
                   trust_set: bool = False, device: str = "cpu", cache_dir: Path | None = None,
                   use_cache: bool = True, **eval_source: Any) -> Finding:
    """Step 1: the check suite's verdict on the representative set (its own logic, not repeated here);
    ``eval_source``: the ``split`` / ``images_dir`` of an annotated eval dataset."""
    from repcurate.commands.check import check

    try:
        suite = check(repset, eval_dir, eval_preprocess=preprocess, model=model, trust_set=trust_set, device=device,
                      cache_dir=cache_dir, use_cache=use_cache, **eval_source)
    except Exception as exc:  # noqa: BLE001 - the doctor goes on without the checks, and says why
        return Finding("representative set", "failed", f"the check suite could not run: {type(exc).__name__}: {exc}")
    bad = [c for c in suite.checks if c.status.value in ("fail", "warn", "error")]
    details = {"verdict": suite.verdict, "checks": [c.to_dict() for c in suite.checks]}
    if not bad:
        return Finding("representative set", "nothing to fix", f"all {len(suite.checks)} checks pass", details)
    summary = "; ".join(f"{c.id} {c.status.value}: {c.message}" for c in bad)
    failed = any(c.status.value in ("fail", "error") for c in bad)
    return Finding("representative set", "problem" if failed else "warning", summary, details,
                   advice=["fix the representative set first (repcurate build / repcurate check): thresholds and bias "
                           "correction are computed from it"])


def doctor(
    model: ModelArg,
    repset: str | Path | RepresentativeSet,
    eval_dir: str | Path,
    *,
    tolerance: float = 1.0,
    budget_minutes: float = 30.0,
    weights_bits: int = 8,
    tpc: str = "imx500:1.0",
    preprocess: PreprocessArg = None,
    class_map: ClassMapArg = None,
    max_eval: int = DEFAULT_MAX_EVAL,
    min_gain: float = 0.5,
    gptq_epochs: int = 5,
    run_checks: bool = True,
    seed: int = 0,
    batch_size: int = 32,
    trust_set: bool = False,
    task: str | None = None,
    postprocess: Any = None,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    split: str = DEFAULT_EVAL_SPLIT,
    images_dir: str | Path | None = None,
) -> DoctorResult:
    """Run MCT's troubleshooting steps on ``model`` with the representative set ``repset`` and measure every
    candidate fix on held-out ``eval_dir`` images. ``tolerance`` and ``min_gain`` are in points of the metric
    (top-1 or agreement ×100 for a classifier, cosine similarity to the float model ×100 for any other model); a
    fix is adopted only when it gains ``min_gain`` points and the gain is significant by the task's paired test
    on the same eval images (McNemar for a classifier, Wilcoxon signed-rank otherwise; one-sided 5 %); ``budget_minutes`` bounds the PTQ
    experiments (cheapest, likeliest first). Without ``preprocess`` the set's recorded preprocessing is used:
    when that is code the set names (not repcurate's own) it runs only with ``trust_set`` (else
    :class:`UsageError` up front). ``task`` / ``postprocess``: as for :func:`repcurate.confirm` (detection: COCO
    mAP, adopted by a paired bootstrap over images of the mAP difference; segmentation: mIoU, per-image mIoU).
    ``split`` / ``images_dir``: of an annotated ``eval_dir`` (YOLO data.yaml, COCO JSON), as for confirm."""
    # the doctor automates MCT's own guide: the quantizer registered as mct, whatever quantizer confirm uses
    quantizer = cast(MCTQuantizer, quantizer_named("mct"))
    if weights_bits not in quantizer.weight_bits or isinstance(weights_bits, bool):
        raise UsageError(f"--weights-bits must be one of {quantizer.weight_bits}")
    require_number(tolerance, "--tolerance", low=0.0, high=100.0, meaning=" (metric points)")
    require_number(budget_minutes, "--budget-minutes", low=0.0, low_open=True, keyword="budget_minutes")
    require_number(min_gain, "--min-gain", low=0.0, high=100.0, keyword="min_gain", meaning=" (metric points)")
    require_int(max_eval, "--max-eval", 1, MAX_COUNT, keyword="max_eval")
    require_int(gptq_epochs, "--gptq-epochs", 1, MAX_GPTQ_EPOCHS, keyword="gptq_epochs")
    require_seed(seed)
    require_int(batch_size, "--batch-size", 1, MAX_BATCH_SIZE, keyword="batch_size")
    require_tpc(tpc)
    runtime = Runtime(device=device, cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size).checked()
    class_map, class_map_given = class_map_of(class_map)
    started = time.perf_counter()
    session = Session.open(repset, ModelSpec(model, preprocess=preprocess), trust_set=trust_set, device=runtime.device)
    source = EvalSource(Path(eval_dir), split=split, images_dir=images_dir, task=task, postprocess=postprocess,
                            class_map=class_map, max_eval=max_eval)
    options = {**given_options(source, preprocess=preprocess, train_dir=None, batch_size=batch_size,
                               device=runtime.device, trust_set=session.trusted, class_map=class_map_given),
               "gptq_epochs": gptq_epochs, "run_checks": run_checks}
    plan = DoctorPlan(quantizer=quantizer, base=quantizer.settings(weights_bits=weights_bits, tpc=tpc), tolerance=tolerance,
                      budget_minutes=budget_minutes, min_gain=min_gain, gptq_epochs=gptq_epochs, run_checks=run_checks,
                      seed=seed, runtime=runtime)
    settings: dict[str, Any] = {"model": session.loaded.spec,
                                "repset": str(repset) if not isinstance(repset, RepresentativeSet) else None,
                                "eval_dir": str(eval_dir), "weights_bits": weights_bits, "tpc": tpc,
                                "tolerance_points": tolerance, "budget_minutes": budget_minutes,
                                "min_gain_points": min_gain, "set_size": len(session.repset), "seed": seed,
                                "device": concrete_device(runtime.device), "options": options}
    return run_doctor(session, source, plan, settings, started)


def run_doctor(session: Session, source: EvalSource, plan: DoctorPlan, settings: dict[str, Any],
               started: float) -> DoctorResult:
    """:func:`doctor` on an open session: preflight, the check suite, the baseline, then every step."""
    framework, tensors, base = session.framework, session.repset.tensors, plan.base
    pre = session.preprocessor()
    findings: list[Finding] = []
    preflight_finding, graph, float_model = steps.preflight_step(session.float_model, framework, tensors)
    if preflight_finding is not None:
        findings.append(preflight_finding)
    if graph is None:
        return DoctorResult(metric=tasks.DEFAULT_METRIC, float_metric=float("nan"), baseline=None, final=None,
                            tolerance=plan.tolerance, recommended=base, framework=framework.name, findings=findings,
                            seconds=time.perf_counter() - started, settings=settings)
    if plan.run_checks:  # after the preflight: a model MCT cannot read stops the doctor before any image is decoded
        log.info("doctor: running the check suite on the representative set")
        findings.insert(0, _check_finding(session.repset, Path(source.path), session.float_model,
                                          session.spec.preprocess if session.spec.preprocess is not None else pre,
                                          session.trusted, session.device,
                                          None if plan.runtime.cache_dir is None else Path(plan.runtime.cache_dir),
                                          plan.runtime.use_cache, split=source.split, images_dir=source.images_dir))
    evaluation = session.evaluate(source, pre, calibration_files={s["content_fingerprint"] for s in session.manifest["samples"]},
                             seed=plan.seed, cache_dir=plan.runtime.cache)
    settings.update({"eval_images": len(evaluation.x), "metric": evaluation.metric, "task": evaluation.task.name,
                     "paired_test_on": evaluation.paired,
                     "reference": "ground truth" if evaluation.labels is not None else "float model",
                     "eval_skipped": [s.to_dict() for s in evaluation.skipped]})
    return _treat(session, plan, graph, float_model, evaluation, findings, settings, started)


def _treat(session: Session, plan: DoctorPlan, graph: Any, float_model: Any, evaluation: EvalData,
           findings: list[Finding], settings: dict[str, Any], started: float) -> DoctorResult:
    """The baseline PTQ with MCT defaults, then every step of the guide, each fix measured against the incumbent."""
    framework, tensors, base, batch_size = session.framework, session.repset.tensors, plan.base, plan.runtime.batch_size
    quantizer = plan.quantizer
    float_value = evaluation.float_metrics()[evaluation.metric]
    lab = Lab(quantizer=quantizer, framework=framework, model=float_model, data_gen=mct_data_gen(tensors, batch_size),
              evaluation=evaluation, tpc=quantizer.platform(base.tpc), budget_seconds=plan.budget_minutes * 60,
              started=started, tpc_spec=base.tpc)
    log.info("doctor: float %s %.2f on %d eval images; baseline PTQ with MCT defaults", evaluation.metric,
             float_value * 100, len(evaluation.x))
    baseline = lab.measure(base, "baseline", keep_as_baseline=True)
    current = Incumbent(base, baseline.metric, baseline.hits)  # type: ignore[arg-type]
    findings.append(Finding("baseline", "measured", f"MCT defaults, {base.weights_bits}-bit weights: "
                            f"{baseline.metric * 100:.2f} vs float {float_value * 100:.2f}",  # type: ignore[operator]
                            experiments=[baseline]))
    stats, concats, kinds, activation_nodes = steps.graph_view(graph, framework.mct, tensors, batch_size)
    set_problem = any(f.step == "representative set" and f.status == "problem" for f in findings)
    context = StepContext(lab=lab, stats=stats, concats=concats, kinds=kinds, activation_nodes=activation_nodes,
                          min_gain=plan.min_gain / 100, float_value=float_value, tolerance=plan.tolerance / 100,
                          set_problem=set_problem, gptq_epochs=plan.gptq_epochs, inputs=graph.inputs())
    xquant = steps.xquant_step(context, batch_size)
    if xquant is not None:
        findings.append(xquant)
    # Bias correction last among the A/Bs: its correction term depends on the quantized weights and thresholds
    # the earlier steps settle (on a model the outliers have destroyed it cannot show anything).
    for step in (steps.head_step, steps.outlier_step, steps.shift_negative_step, steps.concat_step, steps.bias_correction_step,
                 steps.culprit_step, steps.escalation_step):
        finding, current = step(context, current)
        findings.append(finding)
    return DoctorResult(metric=evaluation.metric, float_metric=float_value, baseline=baseline.metric,
                        final=current.metric, tolerance=plan.tolerance, recommended=current.settings,
                        framework=framework.name, findings=findings, ptq_runs=lab.runs,
                        seconds=time.perf_counter() - started, settings=settings)
