"""``class_coverage``: every class the model will see is in the set, and no class dominates.

A set built from a detection / segmentation dataset (its manifest has an ``objects`` section) is judged per
OBJECT class, by the instances it holds (``objects.classes[].instances_selected``), not by the samples' labels
(those are the object quotas' strata, e.g. ``two:small``); the reference classes are those with objects in an
annotated eval dataset (a YOLO / COCO / segmentation ``--eval-dir``), else those with instances in training."""
from __future__ import annotations

from collections import Counter
from typing import Any

from repcurate.checks.base import Check, Measurement, Param, Status
from repcurate.checks.context import CheckContext, MissingInput


class ClassCoverageCheck(Check):
    id = "class_coverage"
    description = "Every class of the eval set (else the training set) is present; no class dominates the set."
    parameters = {"max_missing_fraction": Param(0.0, minimum=0, maximum=1), "max_dominant_share": Param(0.9, minimum=0, maximum=1),
                  "warn_balance_ratio": Param(10.0, minimum=1)}

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        objects = ctx.manifest.get("objects")
        if isinstance(objects, dict) and isinstance(objects.get("classes"), list):
            return self._measure_objects(ctx, objects)
        counts = Counter(s["label"] for s in ctx.manifest["samples"] if s["label"] is not None)
        if not counts:
            return Measurement(None, "the set is unlabelled; class coverage cannot be judged", skipped=True)
        reference: list[str] = []
        source = "training set"
        if ctx.eval_labelled:
            reference = sorted({r.label for r in ctx.eval_records if r.label is not None})
            source = "eval set"
        else:
            classes = ctx.manifest.get("classes")
            if isinstance(classes, list) and all(isinstance(c, dict) and "label" in c for c in classes):
                reference = sorted(c["label"] for c in classes if c["label"] is not None and c.get("available", 1) > 0)
            if not reference:  # a labelled set was built from labelled classes: the manifest lost them
                raise MissingInput("classes", "the set's manifest records no training classes to compare the set "
                                              "against (the eval set is unlabelled); fix: rebuild the set with "
                                              "repcurate build, or pass a labelled eval folder")
        return self._coverage(counts, reference, source, unit="images")

    def _measure_objects(self, ctx: CheckContext, objects: dict[str, Any]) -> Measurement:
        """Per object class: the set's instances against the eval dataset's classes (else training's)."""
        classes = [c for c in objects["classes"] if isinstance(c, dict) and isinstance(c.get("name"), str)]
        counts = Counter({c["name"]: int(c.get("instances_selected", 0)) for c in classes
                          if int(c.get("instances_selected", 0)) > 0})
        if not counts:
            return Measurement(None, "the set holds no object; class coverage cannot be judged", skipped=True)
        reference = ctx.eval_object_classes
        source = "eval set"
        if not reference:
            reference = sorted(c["name"] for c in classes if int(c.get("instances_available", 0)) > 0)
            source = "training set"
        return self._coverage(counts, reference, source, unit="object instances")

    @staticmethod
    def _coverage(counts: Counter[str], reference: list[str], source: str, *, unit: str) -> Measurement:
        missing = [c for c in reference if c not in counts]
        total = sum(counts.values())
        dominant, dominant_count = max(sorted(counts.items()), key=lambda kv: kv[1])
        ratio = max(counts.values()) / min(counts.values())
        details = {"reference": source, "classes_expected": len(reference), "classes_present": len(counts),
                   "missing": missing, "dominant_class": dominant, "dominant_share": round(dominant_count / total, 4),
                   "balance_ratio": round(ratio, 3), "counts": dict(sorted(counts.items())), "unit": unit}
        covered = 1.0 - len(missing) / len(reference) if reference else 1.0
        extra = sorted(set(counts) - set(reference))
        details["reference_classes_present"] = len(reference) - len(missing)
        details["extra_classes"] = extra
        message = f"{len(reference) - len(missing)} of {len(reference)} {source} classes present"
        if extra:
            message += f" (the set also has {len(extra)} class(es) the {source} lacks)"
        if unit != "images":
            message += f", counted in {unit}"
        return Measurement(round(covered, 4), message, details)

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        d = m.details
        if d["classes_present"] == 1 and d["classes_expected"] != 1:
            return Status.FAIL, f"single-class set (only {d['dominant_class']!r}); fix: rebuild with --balance uniform"
        if d["dominant_share"] > params["max_dominant_share"]:
            return Status.FAIL, (f"class {d['dominant_class']!r} is {d['dominant_share']:.0%} of the set (nearly single-class); "
                                 "fix: rebuild with --balance uniform")
        missing_fraction = 1.0 - m.value
        if missing_fraction > params["max_missing_fraction"]:
            shown = ", ".join(d["missing"][:10]) + (" …" if len(d["missing"]) > 10 else "")
            noun = "class" if len(d["missing"]) == 1 else "classes"
            return Status.FAIL, f"{len(d['missing'])} {d['reference']} {noun} missing from the set: {shown}"
        if d["balance_ratio"] > params["warn_balance_ratio"]:
            return Status.WARN, f"class sizes differ by {d['balance_ratio']:.1f}× (largest/smallest)"
        return Status.PASS, m.message
