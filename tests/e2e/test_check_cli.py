"""``repcurate check`` as a CI gate: exit codes, report formats, config errors (real digits, a small
trained CNN as the user's model file, sets built with ``repcurate.build``)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from repcurate.checks.registry import check_ids
from tests.cli_asserts import assert_one_line_error
from tests.unit.checks.checks_testdata import DigitsProject

EVAL_PIPELINES = '''
import numpy as np
from PIL import Image


def forgets_normalisation(image):
    return (np.asarray(image.convert("L").resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255.0)[None]


def for_camera_frames(image):
    """Written for >= 36-pixel frames: raises on the 32x32 digit files."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)[:36, :36] / 255.0
    return grey.reshape(1, 6, 6, 6, 6).mean(axis=(2, 4))
'''


class Project(DigitsProject):
    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.sets = {name: self.build_set(work / name, size=size)
                     for name, size in (("good", 300), ("small", 20), ("warn", 60))}
        self.pipelines = work / "eval_pipelines.py"
        self.pipelines.write_text(EVAL_PIPELINES)

    def args(self, name: str, *extra: str) -> list[str]:
        return ["check", "--repset", str(self.sets[name]), "--eval-dir", str(self.eval),
                "--cache-dir", str(self.cache), "--trust-set", *extra]  # the sets name the test's own model file


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return Project(tmp_path_factory.mktemp("check_cli"))


def test_passing_set_exits_0(project, cli):
    result = cli(*project.args("good"), cwd=project.work)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["check", "status", "value"]
    assert [line.split()[0] for line in lines[1:-1]] == check_ids()
    assert lines[-1] == "verdict: PASS (gate passed, --fail-on fail)"
    # progress is logged to stderr, the report alone goes to stdout
    assert "repcurate: set_size" in result.stderr


def test_failing_set_exits_1(project, cli):
    result = cli(*project.args("small"), cwd=project.work)
    assert result.returncode == 1, result.stderr
    assert "20 images is too few for PTQ statistics (< 32)" in result.stdout
    assert result.stdout.splitlines()[-1] == "verdict: FAIL (gate failed, --fail-on fail)"


def test_fail_on_warn_turns_a_warning_into_exit_1(project, cli):
    config = project.work / "no_shift.toml"
    config.write_text('skip = ["distribution_shift"]\n')  # 60 images: only set_size warns
    default = cli(*project.args("warn", "--config", str(config), "-q"), cwd=project.work)
    assert default.returncode == 0, default.stdout + default.stderr
    assert default.stdout.splitlines()[-1] == "verdict: WARN (gate passed, --fail-on fail)"
    strict = cli(*project.args("warn", "--config", str(config), "--fail-on", "warn", "-q"), cwd=project.work)
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1] == "verdict: WARN (gate failed, --fail-on warn)"
    assert strict.stderr == ""


def test_json_report_with_a_planted_pipeline_defect(project, cli):
    result = cli(*project.args("good", "--format", "json", "-q",
                               "--eval-preprocess", f"{project.pipelines}:forgets_normalisation"), cwd=project.work)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "fail"
    assert [c["id"] for c in report["checks"]] == check_ids()
    assert all(set(c) == {"id", "status", "value", "message", "details"} for c in report["checks"])
    parity = next(c for c in report["checks"] if c["id"] == "preprocessing_parity")
    assert parity["status"] == "fail" and parity["details"]["cause"] == "value_scale"
    assert parity["message"].startswith("value scale differs: the set is standardised, the evaluation pipeline gives 0..1")
    assert report["inputs"]["eval_images"] == 450


def test_junit_report_written_to_a_file(project, cli):
    out = project.work / "reports" / "check.xml"
    result = cli(*project.args("small", "--format", "junit", "--output", str(out), "--model", project.model),
                 cwd=project.work)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    suite = ET.parse(out).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == check_ids()
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert "set_size" in failed
    assert int(suite.get("failures")) == len(failed)
    assert int(suite.get("tests")) == len(cases)
    # with --model, activation_ranges ran (not skipped)
    assert suite.find("testcase[@name='activation_ranges']/skipped") is None
    assert not list(out.parent.glob(".check.xml.tmp-*"))


def test_markdown_report(project, cli):
    result = cli(*project.args("good", "--format", "markdown", "-q"), cwd=project.work)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "## repcurate check: **PASS**"
    assert lines[2] == "| check | status | value | message |"
    assert [line.split("|")[1].strip() for line in lines[4:]] == [f"`{i}`" for i in check_ids()]


def test_crashing_check_fails_the_gate_unless_allowed(project, cli):
    spec = f"{project.pipelines}:for_camera_frames"
    strict = cli(*project.args("good", "--eval-preprocess", spec, "-q"), cwd=project.work)
    assert strict.returncode == 1, strict.stderr
    assert "check crashed: PreprocessError" in strict.stdout
    allowed = cli(*project.args("good", "--eval-preprocess", spec, "--allow-errors", "-q"), cwd=project.work)
    assert allowed.returncode == 0, allowed.stdout
    assert "preprocessing_parity   ERROR" in allowed.stdout


@pytest.mark.parametrize("files", [{}, {"a.png": b"junk", "b.jpg": b"", "c.png": b"\x89PNG\r\n\x1a\n"}],
                         ids=["empty", "all-corrupt"])
def test_eval_folder_without_a_usable_image_exits_1(project, cli, tmp_path, files):
    """Even with every skippable check skipped, no eval image fails the gate (it used to pass, exit 0)."""
    folder = tmp_path / "eval"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    config = tmp_path / "check.toml"
    config.write_text('skip = ["set_size", "class_coverage", "preprocessing_parity", "duplicates", '
                      '"distribution_shift", "activation_ranges"]\n')
    args = ["check", "--repset", str(project.sets["good"]), "--eval-dir", str(folder), "--config", str(config),
            "--cache-dir", str(project.cache), "--format", "json", "-q"]
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    gate = next(c for c in report["checks"] if c["id"] == "eval_data")
    assert gate["status"] == "fail" and gate["message"].startswith(f"no usable eval image in {folder.resolve()} (")
    assert report["verdict"] == "fail"


def test_set_whose_manifest_lost_its_preprocessing_exits_1(project, cli, tmp_path):
    """Deleting `preprocessing` from manifest.json used to skip the checks that need it (exit 0 with
    --allow-errors, since parity only crashed); now they fail and say what is missing and the fix."""
    import shutil

    copy = tmp_path / "set"
    shutil.copytree(project.sets["good"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["preprocessing"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("check", "--repset", str(copy), "--eval-dir", str(project.eval), "--cache-dir", str(project.cache),
                 "--eval-preprocess", project.preprocess, "--trust-set", "--allow-errors", "--format", "json", "-q", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    statuses = {c["id"]: (c["status"], c["message"]) for c in json.loads(result.stdout)["checks"]}
    for check_id in ("preprocessing_parity", "duplicates", "distribution_shift"):
        status, message = statuses[check_id]
        assert status == "fail" and "records no preprocessing" in message and "rebuild the set" in message


def test_missing_repset_dir_exits_3(project, cli, tmp_path):
    result = cli("check", "--repset", str(tmp_path / "nope"), "--eval-dir", str(project.eval), cwd=tmp_path)
    assert_one_line_error(result, 3, str(tmp_path / "nope" / "manifest.json"), "not found", "fix:")


@pytest.mark.parametrize("text, needle", [
    ('[set_sise]\nwarn_below = 10\n', "unknown check 'set_sise'; did you mean 'set_size'?"),
    ('[duplicates]\nnear_distance = "close"\n', "duplicates.near_distance must be a number from 0 to 2, got 'close'"),
    ('[duplicates]\nfail_fraction = nan\n', "duplicates.fail_fraction must be a number from 0 to 1, got nan"),
    ('[distribution_shift]\npermutations = -5\n', "distribution_shift.permutations must be an integer >= 1, got -5"),
    ('skip = ["eval_data"]\n', "eval_data cannot be skipped"),
])
def test_bad_config_exits_2(project, cli, tmp_path, text, needle):
    config = tmp_path / "check.toml"
    config.write_text(text)
    result = cli(*project.args("good", "--config", str(config)), cwd=tmp_path)
    assert_one_line_error(result, 2, needle, str(config))


def test_json_config_that_is_not_an_object_exits_2(project, cli, tmp_path):
    config = tmp_path / "check.json"
    config.write_text("[1, 2]")
    result = cli(*project.args("good", "--config", str(config)), cwd=tmp_path)
    assert_one_line_error(result, 2, str(config), "must be a table {check_id: {param: value}}, got a list", "fix:")


def test_pyproject_table_in_the_working_directory(project, cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.repcurate.check]\nskip = ["distribution_shift"]\n'
                                             'set_size = { warn_below = 50 }\n')
    result = cli(*project.args("warn", "--format", "json", "-q"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["distribution_shift"] == "skipped" and statuses["set_size"] == "pass"
    assert report["inputs"]["config"] == str(tmp_path / "pyproject.toml")
