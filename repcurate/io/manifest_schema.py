"""The structure of a set's ``manifest.json``, checked on load: one clear error instead of a KeyError later.

The schema requires what consumers index directly (``root``, every sample's ``path`` / ``label`` /
``content_fingerprint``, ``layout``) and types the optional sections when they are present (``model``,
``preprocessing``, ``classes``, ``calibration``, ...). Sets written before a section existed (e.g.
``projection``) still load. Sample paths must also stay below ``root`` (see
:func:`repcurate.io.sample_paths.unsafe_path_reason`): a manifest naming ``/etc/passwd`` or ``../x.png``
is refused as tampered.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from repcurate.io.sample_paths import unsafe_path_reason

_STRING_OR_NULL = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_SPEC_SECTION: dict[str, Any] = {"type": "object", "properties": {"spec": {"type": "string"}, "fingerprint": {"type": ["string", "null"]}}}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "root", "layout", "samples"],
    "properties": {
        "schema_version": {"type": "integer"},
        "root": {"type": "string", "minLength": 1},
        "train_source": {"type": "string"},
        "layout": {"type": "string"},
        "seed": {"type": ["integer", "null"]},
        "parameters": {"type": "object"},
        "model": {**_SPEC_SECTION, "properties": {**_SPEC_SECTION["properties"], "framework": {"type": "string"},
                                                  "layer": _STRING_OR_NULL, "embedding_dim": _COUNT}},
        "embedding_preprocessing": _SPEC_SECTION,
        "preprocessing": {**_SPEC_SECTION, "properties": {**_SPEC_SECTION["properties"], "dtype": {"type": "string"},
                                                          "sample_shape": {"type": "array", "items": _COUNT}}},
        "counts": {"type": "object", "additionalProperties": _COUNT},
        "classes": {"type": "array", "items": {
            "type": "object", "required": ["label", "available", "requested", "quota"],
            "properties": {"label": _STRING_OR_NULL, "available": _COUNT, "requested": _COUNT, "quota": _COUNT,
                           "selected": _COUNT, "name": {"type": "string"}}}},
        "unmet_quotas": {"type": "array", "items": {"type": "object"}},
        "empty_classes": {"type": "array", "items": {"type": "string"}},
        "samples": {"type": "array", "items": {
            "type": "object", "required": ["path", "label", "content_fingerprint"],
            "properties": {"index": _COUNT, "path": {"type": "string"}, "label": _STRING_OR_NULL,
                           "content_fingerprint": {"type": "string"}, "size_bytes": _COUNT,
                           "image_size": {"type": "array", "items": _COUNT, "minItems": 2, "maxItems": 2},
                           "boxes": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                                                 "minItems": 5, "maxItems": 5}}}}},
        "skipped": {"type": "array", "items": {
            "type": "object", "required": ["path", "reason"],
            "properties": {"path": {"type": "string"}, "reason": {"type": "string"}, "detail": {"type": "string"}}}},
        "duplicates": {"type": "array", "items": {
            "type": "object", "properties": {"path": {"type": "string"}, "duplicate_of": {"type": "string"}}}},
        "coverage": {"type": ["object", "null"], "properties": {"measured_against": {"type": "string"}}},
        "pool": {"type": "object", "required": ["rule", "files", "pooled", "classes"], "properties": {
            "rule": {"type": "string"}, "value": {"type": ["string", "integer"]}, "seed": {"type": "integer"},
            "files": _COUNT, "pooled": _COUNT, "paths_sha256": {"type": "string"},
            "classes": {"type": "array", "items": {
                "type": "object", "required": ["label", "files", "pool"],
                "properties": {"label": _STRING_OR_NULL, "files": _COUNT, "pool": _COUNT}}}}},
        "domain_match": {"type": ["object", "null"]},
        "objects": {"type": "object", "properties": {"classes": {"type": "array", "items": {"type": "object"}},
                                                     "unmet_quotas": {"type": "array", "items": {"type": "string"}}}},
        "projection": {"type": "object", "properties": {"file": {"type": "string"}, "sha256": {"type": "string"},
                                                        "points": _COUNT, "of": _COUNT}},
        "calibration": {"type": "object", "properties": {
            "file": {"type": "string"}, "key": {"type": "string"}, "dtype": {"type": "string"},
            "shape": {"type": "array", "items": _COUNT}, "sha256": {"type": "string"}}},
    },
}

#: Longest error text quoted from the schema validator (an offending value may be huge).
MAX_ERROR_CHARS = 200


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(MANIFEST_SCHEMA)


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def manifest_problem(manifest: Any) -> str | None:
    """The first structural problem of a parsed manifest as ``JSON.path: what``, or None when it is valid."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(manifest))
    if error is not None:
        message = " ".join(error.message.split())
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS] + "…"
        return f"{_json_path(error.absolute_path)}: {message}"
    for i, sample in enumerate(manifest["samples"]):
        reason = unsafe_path_reason(sample["path"])
        if reason is not None:
            return f"samples[{i}].path: {sample['path']!r} {reason}"
    return None
