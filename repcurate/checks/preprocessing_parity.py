"""``preprocessing_parity``: the same raw files through the set's and the evaluation pipeline."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.checks.base import Check, Measurement, Param, ReportInputs, Status
from repcurate.checks.context import EVAL_PIPELINE, CheckContext
from repcurate.checks.parity import MAJOR_CAUSES, diagnose
from repcurate.data.images import DecodeError
from repcurate.data.set_files import decode_verified

#: Side of the raw image and the rendered tensors in the report's preprocessing-parity panel.
PARITY_SIDE = 160


def _load_pipeline(spec: Any) -> Any:
    """The evaluation pipeline from an argument, or from the spec the check recorded (callers gate that one)."""
    from repcurate.data.preprocess import Preprocessor, make_preprocessor
    from repcurate.frameworks.loading import default_preprocessor

    if isinstance(spec, Preprocessor):
        return spec
    from repcurate.errors import InputError
    from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME

    if spec == f"{DEFAULT_MODEL_NAME}:preprocess":
        return default_preprocessor()
    if callable(spec):
        return make_preprocessor(spec)
    if spec is None or ":" not in str(spec):
        raise InputError(f"the evaluation pipeline {spec!r} was a Python object; pass it again (eval_preprocess=)")
    return make_preprocessor(str(spec))


def _describe_tensor(t: np.ndarray) -> str:
    t = np.asarray(t)
    return (f"shape {tuple(t.shape)} {t.dtype}, range [{float(t.min()):.3g}, {float(t.max()):.3g}], "
            f"mean {float(t.mean()):.3g}, std {float(t.std()):.3g}")


def parity_view(entry: dict[str, Any], inputs: ReportInputs) -> dict[str, Any] | None:
    """The same raw file through the set's and the evaluation pipeline, rendered side by side.

    The check JSON is data: the raw file is read only when it is one of the set's samples whose path stays
    below the set's root and whose content matches its fingerprint (an eval image the JSON names is not
    read); a pipeline the JSON or the manifest names is re-run only when it is repcurate's own or with
    ``trust_set`` (``eval_preprocess`` given here always runs)."""
    from repcurate import trust
    from repcurate.data.preprocess import PreprocessError
    from repcurate.errors import RepcurateError
    from repcurate.render import figures
    from repcurate.render.thumbnails import encode_image, tensor_to_image

    eval_preprocess, trust_set = inputs.eval_preprocess, inputs.trust_set

    details = entry.get("details") or {}
    comparisons = [c for c in details.get("comparisons") or [] if isinstance(c, dict) and isinstance(c.get("file"), str)]
    if not comparisons:
        return None
    cause = details.get("cause")
    same_cause = [c for c in comparisons if c.get("cause") == cause] or comparisons
    chosen = next((c for c in same_cause if c.get("source", "repset") == "repset"), same_cause[0])
    view: dict[str, Any] = {"file": chosen["file"], "source": chosen.get("source", "repset"), "cause": chosen.get("cause"),
                            "message": chosen.get("message", ""), "notes": [],
                            "set_pipeline": details.get("set_pipeline"), "eval_pipeline": details.get("eval_pipeline"),
                            "comparisons": comparisons}
    manifest = inputs.manifest
    samples = manifest.get("samples", [])
    row = next((i for i, s in enumerate(samples) if s["path"] == chosen["file"]), None) if view["source"] == "repset" else None
    image = None
    if row is None:
        view["notes"].append(f"{chosen['file']}: not shown — the report reads only files that are samples of the set "
                             "(a file named by the check JSON alone is not opened)")
    else:
        try:
            image = decode_verified(Path(manifest["root"]), samples[row]["path"], samples[row]["content_fingerprint"],
                                    size_bytes=samples[row].get("size_bytes")).image
        except DecodeError as exc:
            view["notes"].append(f"{chosen['file']}: not shown ({exc.reason}: {exc.detail}); only the stored tensor is shown")
    if image is not None:
        view["raw"] = encode_image(image, max_side=PARITY_SIDE)
    set_tensor = inputs.tensors()[row] if row is not None else None
    eval_tensor = None
    if image is not None:
        recorded_eval = details.get("eval_pipeline")
        spec = eval_preprocess if eval_preprocess is not None else recorded_eval
        if eval_preprocess is None and not trust.allowed(recorded_eval, trust_set):
            view["notes"].append(f"the eval pipeline {recorded_eval!r} is not re-run: it is code named by the check JSON, "
                                 "not by you; pass --eval-preprocess SPEC, or --trust-set to run it")
        else:
            if eval_preprocess is None and not trust.is_bundled(recorded_eval):
                trust.announce("check JSON eval_pipeline", recorded_eval)
            try:
                eval_tensor = _load_pipeline(spec)(image)
            except (RepcurateError, PreprocessError) as exc:
                view["notes"].append(f"the eval pipeline cannot be run again here: {exc}")
    for side, tensor in (("set", set_tensor), ("eval", eval_tensor)):
        if tensor is not None:
            view[f"{side}_image"] = encode_image(tensor_to_image(tensor), max_side=2 * PARITY_SIDE)
            view[f"{side}_text"] = _describe_tensor(tensor)
    if set_tensor is not None and eval_tensor is not None:
        view["histogram"] = figures.value_histograms(set_tensor, eval_tensor)
    return view


class PreprocessingParityCheck(Check):
    id = "preprocessing_parity"
    report_panel = "parity"
    description = ("Raw files run through the set's pipeline (its stored tensors) and the evaluation pipeline give "
                   "the same tensors; a difference is named (scale, mean/std, channel order, layout, size, dtype, "
                   "channel count, inversion).")
    parameters = {"samples": Param(8, minimum=1)}
    uses = frozenset({EVAL_PIPELINE})

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        set_pipeline = ctx.recorded_preprocessing["spec"]  # fails the check when the set records no pipeline
        eval_pre = ctx.eval_preprocessor
        rng = np.random.default_rng(ctx.seed)
        n_set = len(ctx.repset)
        rows = sorted(rng.choice(n_set, min(params["samples"], n_set), replace=False).tolist())
        comparisons: list[dict[str, Any]] = []
        unread: list[dict[str, str]] = []
        for row in rows:  # the stored calibration tensor is the set's pipeline output for that file
            sample = ctx.manifest["samples"][row]
            try:  # only the file the set recorded: confined to its root, content fingerprint verified
                candidate = eval_pre(decode_verified(ctx.repset_root, sample["path"], sample["content_fingerprint"],
                                                         size_bytes=sample.get("size_bytes")).image)
            except DecodeError as exc:
                unread.append({"file": sample["path"], "reason": exc.reason})
                continue
            d = diagnose(ctx.repset.tensors[row], candidate)
            comparisons.append({"file": ctx.manifest["samples"][row]["path"], "source": "repset", "cause": d.cause, "message": d.message})
        if ctx.repset_preprocessor is not None and ctx.repset_preprocessor is not eval_pre:
            for index in ctx.eval_sample_indices(params["samples"]):
                record = ctx.eval_records[int(index)]
                path = ctx.eval_source.root / record.path
                try:
                    d = diagnose(ctx.pipeline_output(ctx.repset_preprocessor, path), ctx.pipeline_output(eval_pre, path))
                except DecodeError:
                    continue
                comparisons.append({"file": record.path, "source": "eval", "cause": d.cause, "message": d.message})
        if not comparisons:
            return Measurement(None, "no raw file could be read to compare the pipelines", skipped=True)
        causes = Counter(c["cause"] for c in comparisons if c["cause"])
        matched = sum(1 for c in comparisons if c["cause"] is None)
        details = {"compared": len(comparisons), "matched": matched, "causes": dict(sorted(causes.items())),
                   "eval_pipeline": eval_pre.spec, "set_pipeline": set_pipeline,
                   "comparisons": comparisons}
        if unread:
            details["unread"] = unread
        if causes:
            worst = causes.most_common(1)[0][0]
            message = next(c["message"] for c in comparisons if c["cause"] == worst)
            details["cause"] = worst
        else:
            message = f"the evaluation pipeline reproduces the set's tensors on {matched} files"
        return Measurement(round(matched / len(comparisons), 4), message, details)

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        causes = set(m.details["causes"])
        if causes & MAJOR_CAUSES:
            return Status.FAIL, m.message
        if causes:
            return Status.WARN, m.message
        return Status.PASS, m.message

    @classmethod
    def report_view(cls, entry: dict[str, Any], inputs: ReportInputs) -> dict[str, Any] | None:
        """The same raw file through the set's and the evaluation pipeline, side by side (:func:`parity_view`)."""
        return parity_view(entry, inputs)
