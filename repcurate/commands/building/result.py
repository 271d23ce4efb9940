"""What ``build`` returns: the set, run statistics, and the summary the command line shows."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from repcurate.repset import RepresentativeSet
from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE


@dataclass
class BuildResult:
    """The representative set plus run statistics (timings are not part of the manifest)."""

    representative_set: RepresentativeSet
    out: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    embedded: int = 0
    cache_hits: int = 0

    kind: ClassVar[str] = "build"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: :meth:`summary`."""
        return self.summary()

    def passed(self) -> bool:
        """``build`` has no gate: a set that was written passes (exit code 0)."""
        return True

    @property
    def manifest(self) -> dict[str, Any]:
        return self.representative_set.manifest

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary for the command line."""
        m = self.manifest
        return {
            "out": None if self.out is None else str(self.out),
            "selected": len(m["samples"]),
            "counts": m["counts"],
            "classes": m["classes"],
            "unmet_quotas": m["unmet_quotas"],
            **({"objects": {key: m["objects"][key] for key in ("classes", "unmet_quotas", "background")
                            if key in m["objects"]}} if "objects" in m else {}),
            "empty_classes": m["empty_classes"],
            "empty_class_reasons": m["empty_class_reasons"],
            "skipped_by_reason": dict(sorted(Counter(s["reason"] for s in m["skipped"]).items())),
            "coverage": {"curated_mean": m["coverage"]["curated"]["mean"],
                         "curated_max": m["coverage"]["curated"]["max"],
                         "random_mean": m["coverage"]["random"]["mean"]["mean"],
                         "random_max": m["coverage"]["random"]["max"]["mean"],
                         **_labelled_coverage(m["coverage"]), "note": coverage_note(m)},
            "domain_match": m.get("domain_match"),
            "pool": {"files": m["pool"]["files"], "pooled": m["pool"]["pooled"]} if "pool" in m else None,
            "embedded": self.embedded,
            "cache_hits": self.cache_hits,
            "seconds": {k: round(v, 2) for k, v in self.timings.items()},
        }


def _labelled_coverage(coverage: dict[str, Any]) -> dict[str, float]:
    """The coverage of the labelled images alone (annotated sources: background images excluded), when measured."""
    curated, random = coverage["curated"].get("labelled"), coverage["random"].get("labelled")
    if curated is None or random is None:
        return {}
    return {"labelled_curated_mean": curated["mean"], "labelled_random_mean": random["mean"]["mean"]}


def coverage_note(manifest: dict[str, Any]) -> str | None:
    """One sentence saying why the curated set's mean coverage is worse than random's when the quota rules force
    it (equal shares per class, the background share), else ``None``."""
    coverage = manifest["coverage"]
    curated, random = coverage["curated"]["mean"], coverage["random"]["mean"]["mean"]
    if curated <= random:
        return None
    balance = manifest["parameters"].get("balance")
    objects = manifest.get("objects")
    if isinstance(objects, dict):
        share = (objects.get("background") or {}).get("share", DEFAULT_BACKGROUND_SHARE)
        labelled = _labelled_coverage(coverage)
        over = (f"; over the labelled images alone curated {labelled['labelled_curated_mean']:.4f} vs random "
                f"{labelled['labelled_random_mean']:.4f}") if labelled else ""
        return (f"curated coverage is worse than random because the quotas fix the set's make-up ({balance} shares "
                f"of object classes and sizes, {share:.0%} background images) while random draws follow the pool's "
                f"density{over}")
    if balance == "uniform" and len(manifest["classes"]) > 1:
        return ("curated coverage is worse than random because --balance uniform gives every class an equal share "
                "while random draws follow the pool's density (common classes get more images); "
                "--balance proportional follows it")
    return None
