"""`repcurate report` and `--report FILE.html` on build and check, through the installed command."""
from __future__ import annotations

import json
import shlex

from tests.cli_asserts import assert_one_line_error
from tests.unit.report.report_testdata import CONFIRM_JSON, check_image, parse


def test_report_command_writes_one_page(report_project, cli, tmp_path):
    out = tmp_path / "site" / "report.html"
    result = cli("report", "--repset", str(report_project.repset), "--check", str(report_project.check_json),
                 "--confirm", str(CONFIRM_JSON), "--doctor", str(report_project.doctor_json), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (") and result.stdout.rstrip().endswith("set, coverage, check, confirm, doctor")
    dom = parse(out.read_text(encoding="utf-8"))
    assert {"set", "coverage", "checks", "confirm", "doctor"} <= set(dom.ids)
    as_json = cli("report", "--repset", str(report_project.repset), "--out", str(tmp_path / "set.html"), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert summary["sections"] == ["set", "coverage"] and summary["bytes"] == (tmp_path / "set.html").stat().st_size


def test_report_errors_are_one_line(report_project, cli, tmp_path):
    missing = cli("report", "--repset", str(report_project.repset), "--check", str(tmp_path / "nope.json"),
                  "--out", str(tmp_path / "r.html"))
    assert_one_line_error(missing, 3, str(tmp_path / "nope.json"), "not found", "fix:")
    not_a_set = cli("report", "--repset", str(tmp_path), "--out", str(tmp_path / "r.html"))
    assert_one_line_error(not_a_set, 3, "manifest.json: not found")
    usage = cli("report", "--out", str(tmp_path / "r.html"))
    assert usage.returncode == 2 and "--repset" in usage.stderr
    assert not (tmp_path / "r.html").exists()


def test_check_report_option_keeps_the_gate_and_shows_the_command(report_project, cli, tmp_path):
    page_path = tmp_path / "check.html"
    args = ["check", "--repset", str(report_project.repset), "--eval-dir", str(report_project.eval),
            "--eval-preprocess", report_project.eval_preprocess, "--cache-dir", str(report_project.cache),
            "--format", "junit", "--output", str(tmp_path / "check.xml"), "--report", str(page_path), "-q",
            "--trust-set"]  # the set's own model embeds (the test's file)
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the gate still fails on the planted pipeline defect
    assert (tmp_path / "check.xml").is_file()
    page = page_path.read_text(encoding="utf-8")
    assert f"<code>{shlex.join(['repcurate', *args])}</code>" in page.replace("&#39;", "'")
    assert "as run" in page
    dom = parse(page)
    assert "checks" in dom.ids and "confirm" not in dom.ids
    parity_images = {i["alt"]: i["src"] for i in dom.images()}
    assert check_image(parity_images["eval pipeline output"]) == (8, 8)  # the --eval-preprocess pipeline re-run


def test_build_report_option(report_project, cli, tmp_path):
    page_path = tmp_path / "build.html"
    result = cli("build", "--train-dir", str(report_project.train), "--out", str(tmp_path / "repset"), "--size", "30",
                 "--model", report_project.model, "--preprocess", report_project.preprocess,
                 "--cache-dir", str(report_project.cache), "--report", str(page_path), "-q")
    assert result.returncode == 0, result.stderr
    page = page_path.read_text(encoding="utf-8")
    dom = parse(page)
    assert len(dom.by_class("img", "thumb")) == 30
    assert "repcurate build --train-dir" in page and "--report" in page and "as run" in page
    assert "No projection to draw" not in page


def test_the_shared_helper_renders_a_confirm_run(report_project, tmp_path):
    """What `repcurate confirm --report` will call (cli/common.write_html_report with confirm=)."""
    import argparse

    from repcurate_cli.common import write_html_report

    command = "repcurate confirm --repset repset --model m.py:make_model --eval-dir eval --report r.html"
    args = argparse.Namespace(report=tmp_path / "confirm.html", command_line=command)
    write_html_report(args, report_project.repset, confirm=json.loads(CONFIRM_JSON.read_text()))
    page = (tmp_path / "confirm.html").read_text(encoding="utf-8")
    assert "confirm" in parse(page).ids and f"<code>{command}</code>" in page
    write_html_report(argparse.Namespace(report=None), report_project.repset)  # no --report: nothing to do
