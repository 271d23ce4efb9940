"""Check settings (config dict / file / ``[tool.repcurate.check]``), suite semantics (crashes,
verdicts, gates), the report formats, and the contract every registered check must keep."""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import repcurate
from repcurate.checks.base import Status
from repcurate.checks.config import resolve_params, skipped_ids
from repcurate.checks.registry import CHECKS, check_ids
from repcurate.errors import UsageError
from repcurate.report.suite_formats import FORMATS, RENDERERS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "checks.md"
FAST = {"skip": ["distribution_shift", "duplicates"]}


# ------------------------------------------------------------------ config validation
@pytest.mark.parametrize("config, needle", [
    ({"set_sise": {"warn_below": 10}}, "unknown check 'set_sise'; did you mean 'set_size'?"),
    ({"distribution_shfit": {}}, "unknown check 'distribution_shfit'; did you mean 'distribution_shift'?"),
    ({"skip": ["activation_range"]}, "unknown check 'activation_range' in skip; did you mean 'activation_ranges'?"),
    ({"set_size": {"fail_belw": 10}}, "unknown parameter set_size.fail_belw; did you mean 'fail_below'?"),
    ({"distribution_shift": {"permutation": 50}}, "unknown parameter distribution_shift.permutation; did you mean 'permutations'?"),
    ({"set_size": {"fail_below": "ten"}}, "set_size.fail_below must be an integer >= 0, got 'ten'"),
    ({"set_size": {"fail_below": 10.5}}, "set_size.fail_below must be an integer >= 0, got 10.5"),
    ({"set_size": {"fail_below": True}}, "set_size.fail_below must be an integer >= 0, got True"),
    ({"duplicates": {"near_distance": "0.1"}}, "duplicates.near_distance must be a number from 0 to 2, got '0.1'"),
    ({"set_size": 50}, "[set_size] must be a table of parameters"),
    ({"skip": "duplicates"}, "skip must be a list of check ids"),
])
def test_bad_config_is_a_usage_error_naming_the_fix(digits, good_set, config, needle):
    with pytest.raises(UsageError) as caught:
        repcurate.check(good_set, digits.eval, config=config, cache_dir=digits.cache, trust_set=True)
    assert needle in str(caught.value)
    assert caught.value.exit_code == 2


def test_int_is_accepted_for_a_float_parameter():
    params = resolve_params({"duplicates": {"near_distance": 0}, "distribution_shift": {"alpha": 1}})
    assert params["duplicates"]["near_distance"] == 0.0 and isinstance(params["duplicates"]["near_distance"], float)
    assert params["distribution_shift"]["alpha"] == 1.0
    # untouched checks keep their defaults
    assert params["set_size"] == dict(next(c for c in CHECKS if c.id == "set_size").defaults)


def test_skip_is_validated_and_returned():
    assert skipped_ids({"skip": ["duplicates", "activation_ranges"]}) == ["duplicates", "activation_ranges"]
    assert skipped_ids({}) == []


PYPROJECT = """
[project]
name = "my-model"

[tool.repcurate.check]
skip = ["distribution_shift"]
set_size = { warn_below = 50 }
"""


def test_pyproject_table_is_picked_up_from_the_working_directory(digits, by_id, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)  # the nearest pyproject.toml at or above the working directory
    repset = digits.build("size60", size=60)
    result = repcurate.check(repset, digits.eval, cache_dir=digits.cache, trust_set=True)
    shift = by_id(result, "distribution_shift")
    assert shift.status is Status.SKIPPED and shift.message == "skipped by configuration"
    assert by_id(result, "set_size").status is Status.PASS  # 60 ≥ warn_below = 50
    assert result.inputs["config"] == str(tmp_path / "pyproject.toml")
    assert "distribution_shift" not in result.seconds
    # an explicit config replaces the discovered one
    explicit = repcurate.check(repset, digits.eval, cache_dir=digits.cache, trust_set=True, config=FAST)
    assert by_id(explicit, "set_size").status is Status.WARN


def test_pyproject_without_the_table_means_defaults(digits, by_id, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    result = repcurate.check(digits.build("size60", size=60), digits.eval, cache_dir=digits.cache, trust_set=True)
    assert result.inputs["config"] is None
    assert by_id(result, "set_size").status is Status.WARN


def test_bad_pyproject_table_is_a_usage_error(digits, good_set, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.repcurate.check]\nset_size = { warn_belo = 5 }\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=re.escape("pyproject.toml: unknown parameter set_size.warn_belo; did you mean 'warn_below'?")):
        repcurate.check(good_set, digits.eval, cache_dir=digits.cache, trust_set=True)


@pytest.mark.parametrize("name, text", [
    ("check.toml", 'skip = ["distribution_shift", "duplicates"]\n[set_size]\nfail_below = 61\n'),
    ("check.json", json.dumps({"skip": ["distribution_shift", "duplicates"], "set_size": {"fail_below": 61}})),
])
def test_config_file(digits, by_id, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    result = repcurate.check(digits.build("size60", size=60), digits.eval, cache_dir=digits.cache, trust_set=True, config=path)
    assert by_id(result, "set_size").status is Status.FAIL
    assert result.inputs["config"] == str(path)


@pytest.mark.parametrize("name, text, needle", [
    ("bad.toml", "set_size = {", "invalid TOML"),
    ("bad.json", "{'set_size': 1}", "invalid JSON"),
])
def test_unparseable_config_file(digits, good_set, tmp_path, name, text, needle):
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=needle):
        repcurate.check(good_set, digits.eval, cache_dir=digits.cache, trust_set=True, config=tmp_path / name)


def test_missing_config_file(digits, good_set, tmp_path):
    with pytest.raises(UsageError, match="cannot read the config"):
        repcurate.check(good_set, digits.eval, cache_dir=digits.cache, trust_set=True, config=tmp_path / "absent.toml")


# ------------------------------------------------------------------ suite semantics
def crops_for_camera_frames(image: Image.Image) -> np.ndarray:
    """An evaluation pipeline written for ≥ 36-pixel camera frames: a fixed 36×36 crop pooled 6×6.
    It works on larger images and raises on the 32×32 digit files."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)[:36, :36] / 255.0
    return grey.reshape(1, 6, 6, 6, 6).mean(axis=(2, 4))


@pytest.fixture(scope="module")
def crashed(digits, good_set):
    return digits.check(good_set, eval_preprocess=crops_for_camera_frames)


def test_crashing_check_is_an_error_that_fails_the_verdict(crashed, by_id):
    parity = by_id(crashed, "preprocessing_parity")
    assert parity.status is Status.ERROR
    assert parity.message.startswith("check crashed: PreprocessError: raised ValueError: cannot reshape array")
    assert parity.details == {"exception": "PreprocessError"}
    assert parity.value is None
    # the other checks ran; distribution_shift notes that no eval tensor could be made
    assert by_id(crashed, "distribution_shift").details["channels"] == {"skipped": "no eval image could be preprocessed"}
    assert by_id(crashed, "set_size").status is Status.PASS
    assert crashed.verdict == "fail"
    assert not crashed.passed() and not crashed.passed(fail_on="warn")


def test_allow_errors_lets_the_verdict_ignore_crashes(digits, good_set, by_id):
    result = digits.check(good_set, eval_preprocess=crops_for_camera_frames, allow_errors=True)
    assert by_id(result, "preprocessing_parity").status is Status.ERROR
    others = {c.status for c in result.checks if c.id != "preprocessing_parity"}
    assert Status.FAIL not in others
    assert result.verdict == ("warn" if Status.WARN in others else "pass")
    assert result.passed()


def test_warn_verdict_and_fail_on_gate(digits, by_id):
    result = digits.check(digits.build("size60", size=60), config=FAST)
    assert by_id(result, "set_size").status is Status.WARN
    assert result.verdict == "warn"
    assert result.passed(fail_on="fail") and not result.passed(fail_on="warn")


def test_good_set_passes_the_whole_suite(digits, good_set):
    result = digits.check(good_set, model=digits.model)
    statuses = {c.id: c.status for c in result.checks}
    assert statuses == {"eval_data": Status.PASS, "set_size": Status.PASS, "class_coverage": Status.PASS, "preprocessing_parity": Status.PASS,
                        "duplicates": Status.PASS, "distribution_shift": Status.PASS,
                        "activation_ranges": statuses["activation_ranges"]}, [(c.id, c.message) for c in result.checks]
    assert statuses["activation_ranges"] in {Status.PASS, Status.WARN}
    assert result.verdict in {"pass", "warn"} and result.passed()
    assert result.inputs["eval_images"] == 450 and result.inputs["eval_skipped"] == 0
    assert result.seconds["total"] >= max(v for k, v in result.seconds.items() if k != "total")


def test_repset_object_is_accepted(digits, good_set, by_id):
    result = digits.check(repcurate.load(good_set), config=FAST)
    assert result.inputs["repset"] is None
    assert by_id(result, "set_size").value == 300


# ------------------------------------------------------------------ report formats
def test_renderers_on_a_result_with_every_status(crashed):
    assert set(RENDERERS) == set(FORMATS) == {"text", "json", "junit", "markdown"}
    statuses = {c.status for c in crashed.checks}
    assert {Status.PASS, Status.ERROR, Status.SKIPPED} <= statuses

    text = RENDERERS["text"](crashed)
    assert text.splitlines()[0].split()[:3] == ["check", "status", "value"]
    assert "preprocessing_parity   ERROR" in text
    assert text.rstrip().endswith("verdict: FAIL (gate failed, --fail-on fail)")

    data = json.loads(RENDERERS["json"](crashed))
    assert data["verdict"] == "fail"
    assert [c["id"] for c in data["checks"]] == check_ids()
    assert all(set(c) == {"id", "status", "value", "message", "details"} for c in data["checks"])

    root = ET.fromstring(RENDERERS["junit"](crashed))
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == len(CHECKS) == len(suite.findall("testcase"))
    assert int(suite.get("errors")) == 1 == len(suite.findall("testcase/error"))
    assert int(suite.get("skipped")) == len(suite.findall("testcase/skipped")) == sum(c.status is Status.SKIPPED for c in crashed.checks)
    assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))

    markdown = RENDERERS["markdown"](crashed)
    assert markdown.startswith("## repcurate check: **FAIL**")
    assert markdown.count("\n| `") == len(CHECKS)


def test_junit_counts_warnings_as_failures_only_with_fail_on_warn(digits):
    result = digits.check(digits.build("size60", size=60), config=FAST)
    for fail_on, expected in (("fail", 0), ("warn", 1)):
        suite = ET.fromstring(RENDERERS["junit"](result, fail_on=fail_on)).find("testsuite")
        assert int(suite.get("failures")) == expected == len(suite.findall("testcase/failure"))
    failure = ET.fromstring(RENDERERS["junit"](result, fail_on="warn")).find("testsuite/testcase/failure")
    assert failure.get("type") == "warn" and failure.get("message").startswith("60 images")
    assert json.loads(failure.text)["per_class"]


def test_markdown_escapes_pipes(digits, good_set):
    result = digits.check(good_set, config=FAST)
    result.checks[0].message = "a | b"
    assert "a \\| b" in RENDERERS["markdown"](result)


# ------------------------------------------------------------------ contract of every registered check
def _json_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (bool, int, str))


def test_registry_contract():
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids)) and ids == check_ids()
    for check in CHECKS:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", check.id), check.id
        assert isinstance(check.description, str) and check.description.strip()
        assert isinstance(check.defaults, dict)
        for name, value in check.defaults.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), (check.id, name)
            assert _json_scalar(value), (check.id, name, value)
        json.dumps(check.defaults, allow_nan=False)
    # the defaults are valid settings themselves
    assert resolve_params({c.id: dict(c.defaults) for c in CHECKS}) == {c.id: dict(c.defaults) for c in CHECKS}


def test_every_check_result_is_json_serialisable(digits, good_set, crashed, by_id):
    """Every check on real inputs (all run, one crashed, some skipped) serialises strictly."""
    results = [digits.check(good_set, model=digits.model), crashed,
               digits.check(digits.build("size20", size=20), digits.eval_flat)]
    seen = set()
    for result in results:
        json.dumps(result.to_dict(), allow_nan=False)
        for check in result.checks:
            json.dumps(check.to_dict(), allow_nan=False)
            seen.add((check.id, check.status))
    assert {check_id for check_id, _ in seen} == set(check_ids())
    assert {status for _, status in seen} >= {Status.PASS, Status.FAIL, Status.ERROR, Status.SKIPPED}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_every_check_is_documented(check):
    assert DOCS.is_file(), f"{DOCS} is missing"
    text = DOCS.read_text(encoding="utf-8")
    heading = f"## `{check.id}`"
    assert heading in text.splitlines(), heading
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    for name in check.defaults:
        assert f"`{name}`" in section, f"docs/checks.md: parameter {check.id}.{name} is not documented"
