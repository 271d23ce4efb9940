"""Render a :class:`~repcurate.commands.build.BuildResult` (its summary) as text or JSON."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repcurate.commands.build import BuildResult


def _object_lines(objects: dict[str, Any]) -> list[str]:
    """An annotated set's per-object-class table (instances and images available / selected, unmet quotas) and
    its background line, then the heading of the selection strata that follow."""
    lines = [f"{'object class':<24}{'instances':>11}{'selected':>10}{'images':>9}{'selected':>10}"]
    unmet = set(objects.get("unmet_quotas") or [])
    for c in objects.get("classes", []):
        flag = f"  quota not met (even share {c['even_share']})" if c["name"] in unmet else ""
        lines.append(f"{c['name']:<24}{c['instances_available']:>11}{c['instances_selected']:>10}"
                     f"{c['images_available']:>9}{c['images_selected']:>10}{flag}")
    background = objects.get("background")
    if background:
        lines.append(f"{'(background)':<24}{'–':>11}{'–':>10}{background['available']:>9}{background['selected']:>10}")
    lines.append("selection strata (object class:size of an image's rarest class; background: no object):")
    return lines


def _text_report(summary: dict[str, Any]) -> str:
    lines = [f"selected {summary['selected']} images → {summary['out']}"]
    counts = summary["counts"]
    lines.append(f"candidates {counts['candidates']} · usable {counts['usable']} · skipped {counts['skipped']} · "
                 f"exact duplicates {counts['exact_duplicates']} · outliers excluded {counts['outliers_excluded']}")
    objects = summary.get("objects")
    if objects:
        lines.extend(_object_lines(objects))
    lines.append(f"{'stratum' if objects else 'class':<24}{'available':>10}{'requested':>10}{'selected':>10}")
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
