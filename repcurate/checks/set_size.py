"""``set_size``: enough images in total and per class."""
from __future__ import annotations

from collections import Counter
from typing import Any

from repcurate.checks.base import Check, Measurement, Param, Status
from repcurate.checks.context import CheckContext


class SetSizeCheck(Check):
    id = "set_size"
    description = "The set has enough images in total and in every class for stable PTQ statistics."
    # Vendors recommend 100–1000 calibration images (NNCF/OpenVINO default 300); MCT's bias
    # correction and threshold search average per-batch statistics, which get noisy below ~100.
    parameters = {"fail_below": Param(32, minimum=0), "warn_below": Param(100, minimum=0),
                  "warn_below_per_class": Param(5, minimum=0)}

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        labels = [s["label"] for s in ctx.manifest["samples"]]
        total = len(labels)
        objects = ctx.manifest.get("objects")
        if isinstance(objects, dict) and isinstance(objects.get("classes"), list):
            # Detection / segmentation: images holding each object class (the samples' labels are quota strata).
            per_class = {c["name"]: int(c.get("images_selected", 0)) for c in objects["classes"]
                         if isinstance(c, dict) and isinstance(c.get("name"), str) and int(c.get("instances_available", 0)) > 0}
            return Measurement(total, f"{total} images holding objects of {sum(1 for n in per_class.values() if n)} "
                                      "class(es)", {"per_class": dict(sorted(per_class.items())), "unit": "images per object class"})
        per_class = dict(sorted(Counter("(unlabelled)" if lab is None else lab for lab in labels).items()))
        return Measurement(total, f"{total} images in {len(per_class)} class(es)", {"per_class": per_class})

    def judge(self, m: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        total = m.value
        if total < params["fail_below"]:
            return Status.FAIL, f"{total} images is too few for PTQ statistics (< {params['fail_below']}); fix: rebuild with --size 300"
        small = {c: n for c, n in m.details["per_class"].items() if n < params["warn_below_per_class"]}
        m.details["small_classes"] = small
        if total < params["warn_below"]:
            return Status.WARN, f"{total} images (< {params['warn_below']} recommended); fix: rebuild with a larger --size"
        if small and len(m.details["per_class"]) > 1:
            names = ", ".join(f"{c} ({n})" for c, n in small.items())
            return Status.WARN, f"classes with fewer than {params['warn_below_per_class']} images: {names}"
        return Status.PASS, m.message
