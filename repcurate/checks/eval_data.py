"""``eval_data``: the eval folder (or list) holds at least one image that decodes.

Without eval images every other check has nothing to compare the set against and would pass on
nothing, so this check is required: ``skip`` cannot turn it off.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from repcurate.checks.base import Check, Measurement, Status
from repcurate.checks.context import CheckContext
from repcurate.data.images import DecodeError, decode_image


def _reasons(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


class EvalDataCheck(Check):
    id = "eval_data"
    description = ("The eval folder (or CSV/JSONL list) holds usable images; without them the other checks "
                   "would pass on nothing. Required: cannot be skipped.")
    required = True

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        source = ctx.eval_source
        reasons = Counter(s.reason for s in source.skipped)
        usable = None
        for record in source.records:  # the scan decodes nothing: decode until one image works
            try:
                decode_image(source.root / record.path)
            except DecodeError as exc:
                reasons[exc.reason] += 1
                continue
            usable = record.path
            break
        undecodable = sum(reasons.values()) - len(source.skipped)
        candidates = len(source.records) - undecodable  # not all decoded: the embedding run reports later failures
        details = {"eval_dir": source.root.as_posix(), "candidates": candidates, "skipped": dict(sorted(reasons.items())),
                   "first_usable": usable}
        if usable is None:
            what = _reasons(reasons) if reasons else "no files"
            return Measurement(0, f"no usable eval image in {source.root} ({what})", details)
        note = f" ({sum(reasons.values())} file(s) skipped: {_reasons(reasons)})" if reasons else ""
        return Measurement(candidates, f"{candidates} eval image(s){note}", details)

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        if m.value == 0:
            return Status.FAIL, (f"{m.message}; fix: pass the folder (or CSV/JSONL list) of the evaluation images "
                                 "with --eval-dir")
        return Status.PASS, m.message
