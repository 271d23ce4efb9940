"""The set's manifest: what was read, how it was chosen, what was skipped and why, what the set covers."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from repcurate.commands.building.request import CheckedBuild
from repcurate.commands.building.steps import PooledSource, Selected
from repcurate.data.annotated import AnnotatedRecord
from repcurate.data.scan import SkippedFile
from repcurate.frameworks.base import layer_names
from repcurate.repset import SCHEMA_VERSION
from repcurate.select.object_quotas import BACKGROUND_NAME
from repcurate.version import __version__


def _sample_objects(record: Any) -> dict[str, Any]:
    """An annotated sample's image size and boxes (``[class id, x0, y0, x1, y1]`` in pixels of the original image,
    crowd regions left out), for the report's thumbnails; nothing for other records."""
    if not isinstance(record, AnnotatedRecord):
        return {}
    return {"image_size": [record.width, record.height],
            "boxes": [[b.cls, round(b.x0, 2), round(b.y0, 2), round(b.x1, 2), round(b.y1, 2)]
                      for b in record.boxes if not b.crowd]}


def _empty_class_reasons(class_folders: list[str], usable: set[str | None], skipped: list[SkippedFile]) -> dict[str, str]:
    """Why each class folder gave no usable image: no image files in it, or what was skipped there."""
    by_class: dict[str, Counter[str]] = {}
    for s in skipped:
        by_class.setdefault(s.path.split("/", 1)[0], Counter())[s.reason] += 1
    reasons: dict[str, str] = {}
    for c in sorted(set(class_folders) - {u for u in usable if u is not None}):
        counts = by_class.get(c)
        reasons[c] = ("no image files" if not counts else
                      "no usable image (" + ", ".join(f"{n} {r}" for r, n in sorted(counts.items())) + " skipped)")
    return reasons


def _coverage_population(pool_info: dict[str, Any], usable: int) -> str:
    """What the coverage figures are measured over, in words (the pool, or every usable image)."""
    if pool_info["pooled"] >= pool_info["files"]:
        return f"every usable image of the folder ({usable})"
    return (f"the candidate pool: {usable} usable of {pool_info['pooled']} pooled of {pool_info['files']} image files "
            "(a seeded stratified random sample per class or object class); they estimate the coverage of the whole folder's "
            "distribution, not the distance of every file to the set")


def build_manifest(checked: CheckedBuild, pooled: PooledSource, chosen_set: Selected, embedder: Any,
                   set_preprocessor: Any, projection_info: dict[str, Any]) -> dict[str, Any]:
    """The manifest of the chosen set (key order fixed: the file is byte-identical for the same inputs)."""
    request, config = checked.request, checked.config
    source, selection, chosen, labels = pooled.source, chosen_set.selection, chosen_set.chosen, chosen_set.labels
    run, skipped, tensors = chosen_set.embedded.run, chosen_set.embedded.skipped, chosen_set.tensors
    target_info, annotated = chosen_set.embedded.target_info, request.source.annotated
    match_dir = request.match_dir
    usable_labels = {r.label for r in run.records}
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "repcurate", "version": __version__},
        "command": "build",
        "root": source.root.as_posix(),
        "train_source": Path(request.source.path).resolve().as_posix(),
        "layout": source.layout,
        "parameters": {**config.to_dict(), "match_dir": None if match_dir is None else Path(match_dir).resolve().as_posix(),
                       "layer": ",".join(layer_names(request.model.layer)) or None, **selection.near_duplicate_record()},
        "seed": config.seed,
        "model": {"spec": embedder.model_spec, "framework": embedder.framework, "layer": embedder.layer,
                  "fingerprint": embedder.fingerprint, "embedding_dim": int(run.vectors.shape[1])},
        "embedding_preprocessing": {"spec": embedder.preprocessor.spec, "fingerprint": embedder.preprocessor.fingerprint},
        "preprocessing": {"spec": set_preprocessor.spec, "fingerprint": set_preprocessor.fingerprint,
                          "sample_shape": list(tensors.shape[1:]), "dtype": str(tensors.dtype)},
        "counts": {"candidates": pooled.candidates, "usable": len(run.records),
                   "skipped": len(skipped), "exact_duplicates": len(selection.exact_duplicates),
                   "outliers_excluded": len(selection.outliers), "selected": len(chosen)},
        "classes": [{**q.to_dict(), "selected": selection.selected_per_class.get(q.label, 0),
                     **({"name": BACKGROUND_NAME} if annotated and q.label is None else {})} for q in selection.quotas],
        "unmet_quotas": [q.to_dict() for q in selection.quotas if q.unmet],
        "empty_classes": sorted(c for c in source.class_folders if c not in usable_labels),
        "empty_class_reasons": _empty_class_reasons(source.class_folders, usable_labels, skipped),
        "samples": [{"index": i, "path": r.path, "label": labels[row], "content_fingerprint": r.fingerprint,
                     "size_bytes": r.size_bytes, **_sample_objects(r)}
                    for i, (row, r) in enumerate(zip(selection.indices, chosen))],
        "skipped": [s.to_dict() for s in skipped],
        "duplicates": [{"path": run.records[row].path, "duplicate_of": run.records[first].path}
                       for row, first in sorted(selection.exact_duplicates.items())],
        "coverage": {**selection.coverage, "measured_against": _coverage_population(pooled.pool_info, len(run.records))},
        "pool": pooled.pool_info,
        "domain_match": None if target_info is None else {**target_info, **(selection.domain_match or {})},
        "projection": projection_info,
    }
    objects = chosen_set.balancing.report(selection.indices, config.balance)
    if objects is not None:
        images_dir = request.source.images_dir
        manifest["objects"] = {"split": request.source.split,
                               "images_dir": None if images_dir is None else Path(images_dir).resolve().as_posix(),
                               **objects}
    return manifest
