"""Render a :class:`~repcurate.commands.build.BuildResult` (its summary) as text or JSON."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repcurate.commands.build import BuildResult


def _text_report(summary: dict[str, Any]) -> str:
    lines = [f"selected {summary['selected']} images → {summary['out']}"]
    counts = summary["counts"]
    lines.append(f"candidates {counts['candidates']} · usable {counts['usable']} · skipped {counts['skipped']} · "
                 f"exact duplicates {counts['exact_duplicates']} · outliers excluded {counts['outliers_excluded']}")
    lines.append(f"{'class':<24}{'available':>10}{'requested':>10}{'selected':>10}")
    for c in summary["classes"]:
        label = c.get("name") or ("(unlabelled)" if c["label"] is None else c["label"])
        flag = f"  {c['reason']}" if c.get("reason") else "  quota not met" if c["available"] < c["requested"] else ""
        lines.append(f"{label:<24}{c['available']:>10}{c['requested']:>10}{c['selected']:>10}{flag}")
    if summary["empty_classes"]:
        reasons = summary.get("empty_class_reasons", {})
        lines.append("empty classes: " + ", ".join(f"{c} ({reasons[c]})" if c in reasons else c
                                                   for c in summary["empty_classes"]))
    if summary["skipped_by_reason"]:
        lines.append("skipped: " + ", ".join(f"{n} {r}" for r, n in summary["skipped_by_reason"].items()))
    pool = summary.get("pool")
    if pool and pool["pooled"] < pool["files"]:
        lines.append(f"candidate pool: {pool['pooled']} of {pool['files']} image files embedded (seeded random per class or object class; "
                     "--pool all embeds every file); coverage below is measured against the pool")
    cov = summary["coverage"]
    lines.append(f"coverage (distance to nearest selected, lower is better): curated mean {cov['curated_mean']:.4f} "
                 f"max {cov['curated_max']:.4f} · random mean {cov['random_mean']:.4f} max {cov['random_max']:.4f}")
    if "labelled_curated_mean" in cov:
        lines.append(f"coverage of the labelled images (background excluded): curated mean {cov['labelled_curated_mean']:.4f} "
                     f"· random mean {cov['labelled_random_mean']:.4f}")
    if cov.get("note"):
        lines.append(cov["note"])
    if summary["domain_match"]:
        dm = summary["domain_match"]
        lines.append(f"domain match ({dm['images']} target images): MMD² curated {dm['mmd_curated']:.5f} · "
                     f"random {dm['mmd_random']['mean']:.5f} ± {dm['mmd_random']['std']:.5f}")
    lines.append(f"embedded {summary['embedded']} images, {summary['cache_hits']} from cache")
    return "\n".join(lines) + "\n"


def render_text(result: BuildResult) -> str:
    return _text_report(result.summary())


def render_json(result: BuildResult) -> str:
    return json.dumps(result.summary(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[BuildResult], str]] = {"text": render_text, "json": render_json}
