"""``preprocessing_parity``: the same raw files through the set's and the evaluation pipeline."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from repcurate.checks.base import Check, Measurement, Param, Status
from repcurate.checks.context import EVAL_PIPELINE, CheckContext
from repcurate.checks.parity import MAJOR_CAUSES, diagnose
from repcurate.data.images import DecodeError
from repcurate.data.set_files import decode_verified


class PreprocessingParityCheck(Check):
    id = "preprocessing_parity"
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
                candidate = eval_pre(decode_verified(ctx.repset_root, sample["path"], sample["content_fingerprint"]).image)
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
