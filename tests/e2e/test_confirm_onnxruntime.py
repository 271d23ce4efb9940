"""`repcurate confirm --quantizer onnxruntime` on a digits CNN trained in the test: ONNX Runtime's own
quantize_static (QDQ) calibrated by each arm's set, the quantized graph run by an ORT session (real data)."""
from __future__ import annotations

import json

import pytest

import repcurate
from repcurate.errors import UsageError
from tests.cli_asserts import assert_one_line_error
from tests.e2e.model_files import write_digits_project, write_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("confirm-ort")
    model, preprocess = write_model(work, "torch")
    write_digits_project(work, model, preprocess, train_per_class=60, eval_per_class=30, set_size=32)
    return work, model


def _without_timings(report: dict) -> dict:
    return {**report, "arms": [{k: v for k, v in a.items() if k != "ptq_seconds"} for a in report["arms"]]}


def test_library_runs_every_calibration_method_on_every_arm_reproducibly(project):
    work, model = project
    kwargs = {"quantizer": "onnxruntime", "random_sets": 2, "seed": 3, "trust_set": True}
    first = repcurate.confirm(work / "repset", model, work / "eval", **kwargs)
    assert [(a["set"], a["calibration"]) for a in first.arms] == [
        (name, method) for name in ("curated", "random-3", "random-4", "first-n")
        for method in ("minmax", "entropy", "percentile")]
    assert first.float["top1"] > 0.7
    assert all(a["metric"]["top1"] >= first.float["top1"] - 0.1 for a in first.arms)  # int8 QDQ loses little
    report = first.to_dict()
    assert report["settings"]["quantizer"] == "onnxruntime" and report["settings"]["weights_bits"] == 8
    assert "tpc" not in report["settings"]  # an MCT setting: meaningless for ONNX Runtime
    assert [r["calibration"] for r in report["summary"]] == ["percentile", "minmax", "entropy"]
    assert all(r["random_runs"] == 2 and r["verdict"] for r in report["summary"])
    second = repcurate.confirm(work / "repset", model, work / "eval", **kwargs)
    assert json.dumps(_without_timings(second.to_dict()), sort_keys=True) == json.dumps(_without_timings(report), sort_keys=True)


def test_four_bit_weights_and_an_export_of_the_best_run(project, tmp_path):
    import numpy as np
    import onnxruntime as ort

    from tests.e2e.test_toolchains import eval_arrays

    work, model = project
    out = tmp_path / "exported"
    result = repcurate.confirm(work / "repset", model, work / "eval", quantizer="onnxruntime", weights_bits=4,
                               calibration=("minmax", "percentile"), random_sets=1, first_n=False, export=out,
                               trust_set=True)
    assert {a["calibration"] for a in result.arms} == {"minmax", "percentile"}
    description = json.loads((out / "export.json").read_text())
    assert description["quantizer"] == "onnxruntime" and description["weights_bits"] == 4
    best = max(result.arms, key=lambda a: a["metric"]["top1"])
    assert description["metric"]["top1"] == best["metric"]["top1"]
    x, labels = eval_arrays(work / "eval", model.replace(":make_model", ":preprocess"))
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    top1 = float(np.mean(session.run(None, {"input": x})[0].argmax(1) == labels))
    assert round(top1, 6) == description["metric"]["top1"]  # the file scores what confirm reported


def test_cli_json_markdown_and_html_show_the_quantizer_and_its_settings(project, cli, tmp_path):
    work, model = project
    html = tmp_path / "confirm.html"
    base = ["confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
            "--quantizer", "onnxruntime", "--calibration", "minmax,entropy", "--random-sets", "1", "--no-first-n",
            "--trust-set"]
    result = cli(*base, "--format", "json", "--report", str(html))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # ORT's calibrator prints nothing into the JSON
    assert report["settings"]["quantizer"] == "onnxruntime"
    assert [(a["set"], a["settings"]) for a in report["arms"]] == [
        ("curated", {"calibration": "minmax"}), ("curated", {"calibration": "entropy"}),
        ("random-0", {"calibration": "minmax"}), ("random-0", {"calibration": "entropy"})]
    page = html.read_text(encoding="utf-8")
    assert "ONNX Runtime post-training quantization" in page and "calibration minmax" in page
    assert "--quantizer onnxruntime" in page
    markdown = cli(*base, "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert "| calibration | curated |" in markdown.stdout and "ONNX Runtime" in markdown.stdout
    assert "- calibration minmax:" in markdown.stdout


def test_mismatched_options_are_refused_before_any_work(project, cli, tmp_path):
    work, model = project
    base = ["confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"), "--trust-set"]
    assert_one_line_error(cli(*base, "--quantizer", "onnxruntime", "--bias-correction", "on"), 2,
                          "--bias-correction", "not a setting of the onnxruntime quantizer")
    assert_one_line_error(cli(*base, "--calibration", "entropy"), 2, "--calibration", "mct quantizer")
    assert_one_line_error(cli(*base, "--quantizer", "onnxruntime", "--weights-bits", "2"), 2, "--weights-bits", "8, 4")
    with pytest.raises(UsageError, match=r"no quantizer 'tensorrt'|unknown quantizer|tensorrt"):
        repcurate.confirm(work / "repset", model, work / "eval", quantizer="tensorrt", trust_set=True)


def test_a_keras_model_is_refused_with_a_fix(keras_project, cli):
    work, model_path, _preprocess = keras_project
    result = cli("confirm", "--repset", str(work / "repset"), "--model", str(model_path), "--eval-dir",
                 str(work / "eval"), "--quantizer", "onnxruntime", "--trust-set")
    assert_one_line_error(result, 2, "needs a PyTorch model", "fix:", "--quantizer mct")
