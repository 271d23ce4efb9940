"""`repcurate confirm --sizes` on a digits CNN trained in the test (real MCT, real data): the curve, the
recommendation on a real run, the tables and the HTML plot, and bad sizes refused with exit 2."""
from __future__ import annotations

import json

import pytest

import repcurate
from repcurate.errors import UsageError
from tests.cli_asserts import assert_one_line_error
from tests.e2e.model_files import write_digits_project, write_model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("confirm-sizes")
    model, preprocess = write_model(work, "torch")
    write_digits_project(work, model, preprocess, train_per_class=40, eval_per_class=20, set_size=32)
    return work, model


def test_library_curve_and_recommendation(project):
    work, model = project
    result = repcurate.confirm(work / "repset", model, work / "eval", sizes=[32, 8, 16], random_sets=2,
                               bias_correction=(True,), weights_bits=4, seed=1, tolerance=2.0, trust_set=True)
    assert [(a["set"], a["size"]) for a in result.arms] == [
        (name, size) for size in (8, 16, 32) for name in ("curated", "random-1", "random-2")]  # no first-N arm
    report = result.to_dict()
    assert report["settings"]["sizes"] == [8, 16, 32] and report["settings"]["tolerance"] == 2.0
    curve = report["size_curve"]
    assert [r["size"] for r in curve] == [8, 16, 32]
    for r in curve:
        assert r["random_runs"] == 2 and r["random_min"] <= r["random_mean"] <= r["random_max"]
        assert r["random_spread"] == pytest.approx(r["random_max"] - r["random_min"], abs=1e-6)
    at_full = [a for a in result.arms if a["set"] == "curated" and a["size"] == 32]
    assert curve[-1]["curated"] == at_full[0]["metric"]["top1"]
    assert [r["random_runs"] for r in report["summary"]] == [2]  # the verdict is the largest size's
    [pick] = report["size_recommendation"]
    # the rule, checked against the run's own numbers
    largest = curve[-1]["curated"]
    ok = [r["size"] for r in curve if r["curated"] >= largest - 0.02 and r["random_spread"] < 0.02]
    assert pick["size"] == (ok[0] if ok else None), (curve, pick)
    again = repcurate.confirm(work / "repset", model, work / "eval", sizes=[8, 16, 32], random_sets=2,
                              bias_correction=(True,), weights_bits=4, seed=1, tolerance=2.0, trust_set=True)
    assert again.to_dict()["size_curve"] == curve


def test_cli_tables_json_and_html_plot(project, cli, tmp_path):
    work, model = project
    html = tmp_path / "sizes.html"
    base = ["confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
            "--sizes", "8,32", "--random-sets", "2", "--bias-correction", "on", "--trust-set"]
    result = cli(*base, "--format", "json", "--report", str(html))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["size"] for r in report["size_curve"]] == [8, 32] and len(report["size_recommendation"]) == 1
    page = html.read_text(encoding="utf-8")
    assert 'id="confirm-sizes"' in page and "against the calibration set size" in page
    assert "--sizes 8,32" in page  # the command line as run
    text = cli(*base)
    assert text.returncode == 0, text.stderr
    assert "top1 by calibration set size (tolerance 1.0 points)" in text.stdout
    assert "random spread" in text.stdout and "bias correction on: " in text.stdout


def test_bad_sizes_are_refused_before_any_work(project, cli):
    work, model = project
    base = ["confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"), "--trust-set"]
    assert_one_line_error(cli(*base, "--sizes", "16,64"), 2, "--sizes", "64 is larger than the set (32 samples",
                          "repcurate build --size 64")
    assert_one_line_error(cli(*base, "--sizes", "0,16"), 2, "--sizes")
    assert_one_line_error(cli(*base, "--sizes", "a,b"), 2, "--sizes")
    assert_one_line_error(cli(*base, "--sizes", "16", "--tolerance", "-1"), 2, "--tolerance")
    with pytest.raises(UsageError, match="--export cannot be combined with --sizes"):
        repcurate.confirm(work / "repset", model, work / "eval", sizes=[16], export=work / "out", trust_set=True)
