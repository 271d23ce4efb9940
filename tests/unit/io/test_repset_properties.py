"""Property-based: whatever a manifest.json holds, `load_manifest` / `load` either load it or raise InputError (exit 3),
and `repcurate check` / `repcurate report` exit 0-4 with no traceback."""
from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcurate.errors import InputError
from repcurate.repset import MANIFEST_NAME, RepresentativeSet, load, load_manifest

SAMPLES = 3


def valid_manifest() -> dict[str, Any]:
    """The shape `repcurate build` writes (every section), for three samples."""
    return {
        "schema_version": 1, "tool": {"name": "repcurate", "version": "0.1.0"}, "command": "build",
        "root": "/nonexistent/train", "train_source": "/nonexistent/train", "layout": "classes",
        "parameters": {"size": 3, "match_dir": None, "layer": None}, "seed": 0,
        "model": {"spec": "efficientnet-lite0", "framework": "torch", "layer": "classifier", "fingerprint": "f",
                  "embedding_dim": 4},
        "embedding_preprocessing": {"spec": "efficientnet-lite0:preprocess", "fingerprint": "e"},
        "preprocessing": {"spec": "efficientnet-lite0:preprocess", "fingerprint": "e", "sample_shape": [2],
                          "dtype": "float32"},
        "counts": {"candidates": 3, "usable": 3, "skipped": 0, "exact_duplicates": 0, "outliers_excluded": 0, "selected": 3},
        "classes": [{"label": "a", "available": 3, "requested": 3, "quota": 3, "selected": 3}],
        "unmet_quotas": [], "empty_classes": [],
        "samples": [{"index": i, "path": f"a/{i}.png", "label": "a", "content_fingerprint": f"{i:032x}"}
                    for i in range(SAMPLES)],
        "skipped": [], "duplicates": [], "coverage": None, "domain_match": None,
    }


JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
                | st.sampled_from(["NaN", "Infinity", "-Infinity", "/etc/passwd", "../x.png", "C:\\x.png", "", "\x00"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
KEYS = ["schema_version", "root", "layout", "samples", "model", "preprocessing", "classes", "calibration", "skipped",
        "counts", "projection", "seed"]
SAMPLE_KEYS = ["path", "label", "content_fingerprint", "index"]


@st.composite
def mutated_manifests(draw: st.DrawFn) -> Any:
    """A valid manifest with a few keys dropped or replaced (top level or in a sample), or any JSON value."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    manifest = copy.deepcopy(valid_manifest())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "sample", "class"]))
        target = manifest
        keys = KEYS
        if where == "sample" and isinstance(manifest.get("samples"), list) and manifest["samples"]:
            target, keys = manifest["samples"][draw(st.integers(0, len(manifest["samples"]) - 1))], SAMPLE_KEYS
        elif where == "class" and isinstance(manifest.get("classes"), list) and manifest["classes"]:
            target, keys = manifest["classes"][0], ["label", "available", "requested", "quota"]
        if not isinstance(target, dict):
            continue
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUES)
    return manifest


def _write(directory: Path, manifest: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # allow_nan: Python's json writes NaN / Infinity literals, which a hand-edited manifest may hold too
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, allow_nan=True), encoding="utf-8")


def test_a_manifest_build_writes_passes_the_schema(tmp_path: Path) -> None:
    tensors = np.zeros((SAMPLES, 2), np.float32)
    RepresentativeSet(tensors, valid_manifest()).save(tmp_path / "set")
    loaded = load(tmp_path / "set")
    assert loaded.manifest["samples"][2]["path"] == "a/2.png"
    old = {**valid_manifest(), "calibration": loaded.manifest["calibration"]}  # written before `projection` existed
    old.pop("coverage"), old.pop("domain_match")
    _write(tmp_path / "old", old)
    assert load_manifest(tmp_path / "old")["root"] == "/nonexistent/train"


def test_a_manifest_without_its_calibration_record_is_refused(tmp_path: Path) -> None:
    # without the record a swapped calibration.npz could not be detected: the set is refused, not trusted
    RepresentativeSet(np.zeros((SAMPLES, 2), np.float32), valid_manifest()).save(tmp_path / "set")
    manifest = json.loads((tmp_path / "set" / MANIFEST_NAME).read_text())
    del manifest["calibration"]
    (tmp_path / "set" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="calibration integrity record"):
        load(tmp_path / "set")


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest=mutated_manifests())
def test_load_manifest_loads_or_raises_input_error(tmp_path: Path, manifest: Any) -> None:
    directory = tmp_path / "set"
    _write(directory, manifest)
    try:
        loaded = load_manifest(directory)
    except InputError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith(str(directory / MANIFEST_NAME))
        return
    # what loads is safe to index as the consumers do
    assert isinstance(loaded["root"], str) and isinstance(loaded["layout"], str)
    for sample in loaded["samples"]:
        assert isinstance(sample["path"], str) and not sample["path"].startswith("/") and ".." not in sample["path"].split("/")
        assert sample["label"] is None or isinstance(sample["label"], str)
        assert isinstance(sample["content_fingerprint"], str)
    for c in loaded.get("classes", []):
        assert all(isinstance(c[k], int) and not isinstance(c[k], bool) for k in ("available", "requested", "quota"))
        assert all(math.isfinite(c[k]) for k in ("available", "requested", "quota"))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest=mutated_manifests())
def test_load_loads_or_raises_input_error(tmp_path: Path, manifest: Any) -> None:
    directory = tmp_path / "set"
    shutil.rmtree(directory, ignore_errors=True)  # the previous example left a tampered set, which is not ours to replace
    RepresentativeSet(np.zeros((SAMPLES, 2), np.float32), valid_manifest()).save(directory)
    recorded = json.loads((directory / MANIFEST_NAME).read_text())
    if isinstance(manifest, dict) and "calibration" not in manifest:
        manifest["calibration"] = recorded["calibration"]
    _write(directory, manifest)
    try:
        loaded = load(directory)
    except InputError:
        return
    assert len(loaded) == len(loaded.manifest["samples"])


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest=mutated_manifests())
def test_cli_check_and_report_exit_cleanly_on_any_manifest(tmp_path: Path, manifest: Any) -> None:
    from tests.conftest import run_cli

    directory = tmp_path / "set"
    shutil.rmtree(directory, ignore_errors=True)
    RepresentativeSet(np.zeros((SAMPLES, 2), np.float32), valid_manifest()).save(directory)
    if isinstance(manifest, dict):
        manifest.setdefault("calibration", json.loads((directory / MANIFEST_NAME).read_text())["calibration"])
    _write(directory, manifest)
    evaluation = tmp_path / "eval"
    evaluation.mkdir(exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text('skip = ["preprocessing_parity", "duplicates", "distribution_shift", "activation_ranges"]\n')
    for args in (["check", "--repset", str(directory), "--eval-dir", str(evaluation), "--config", str(config), "--no-cache"],
                 ["report", "--repset", str(directory), "--out", str(tmp_path / "r.html")]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode in (0, 1, 2, 3, 4), (args[0], result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
