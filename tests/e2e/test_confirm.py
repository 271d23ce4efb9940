"""`repcurate confirm` on a digits CNN trained in the test (real MCT, real data)."""
from __future__ import annotations

import json

import pytest

import repcurate
from repcurate.errors import InputError
from tests.e2e.model_files import write_digits_project, write_model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("confirm")
    model, preprocess = write_model(work, "torch")
    write_digits_project(work, model, preprocess, train_per_class=60, eval_per_class=40, set_size=32)
    return work, model


def test_confirm_table_shape_and_reproducibility(project):
    work, model = project
    kwargs = {"random_sets": 2, "weights_bits": 2, "seed": 5, "trust_set": True}  # the set names the test's own files
    first = repcurate.confirm(work / "repset", model, work / "eval", **kwargs)
    assert first.metric == "top1"
    assert first.float["top1"] > 0.7  # model trained on 8x8 arrays, evaluated through 32 px PNGs
    assert [(a["set"], a["bias_correction"]) for a in first.arms] == [
        (name, bc) for name in ("curated", "random-5", "random-6", "first-n") for bc in (True, False)]
    assert all(0.0 <= a["metric"]["top1"] <= 1.0 and a["ptq_seconds"] > 0 for a in first.arms)
    curated = {a["bias_correction"]: a["metric"] for a in first.arms if a["set"] == "curated"}
    assert curated[True] != curated[False]  # bias correction on/off gives two different quantized models
    summary = first.summary()
    assert [r["bias_correction"] for r in summary] == [True, False]
    assert all(r["random_runs"] == 2 and r["verdict"] for r in summary)
    second = repcurate.confirm(work / "repset", model, work / "eval", **kwargs)
    assert [a["metric"] for a in second.arms] == [a["metric"] for a in first.arms]
    json.dumps(first.to_dict(), allow_nan=False)


def test_eval_overlapping_calibration_is_refused(project):
    work, model = project
    with pytest.raises(InputError, match="also calibration images"):
        repcurate.confirm(work / "repset", model, work / "train", random_sets=1, bias_correction=(True,), trust_set=True)


def test_confirm_cli_json_and_html_report(project, cli, tmp_path):
    work, model = project
    html = tmp_path / "confirm.html"
    result = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
                 "--random-sets", "1", "--bias-correction", "on", "--no-first-n", "--format", "json", "--report", str(html),
                 "--trust-set")  # the set names the test's own preprocessing file
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metric"] == "top1" and "top1" in report["float"]
    assert [a["set"] for a in report["arms"]] == ["curated", "random-0"]
    assert report["settings"]["model"] == model and report["settings"]["eval_dir"] == str(work / "eval")
    page = html.read_text(encoding="utf-8")
    assert '<section id="confirm">' in page and "random-0" in page
    assert "--report" in page  # the confirm section shows the command line as run
    text = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "train"),
               "--trust-set")
    assert text.returncode == 3 and "also calibration images" in text.stderr and "Traceback" not in text.stderr


def _eval_tensors(work, preprocess_spec):
    from repcurate.data.preprocess import make_preprocessor
    from repcurate.data.sources import scan
    from repcurate.embed.pipeline import load_tensors

    source = scan(work / "eval")
    labels = [int(r.label) for r in source.records]
    return load_tensors(source.records, source.root, make_preprocessor(preprocess_spec)), labels


def test_export_writes_the_best_runs_onnx_model(project, tmp_path):
    """The exported ONNX file, run by onnxruntime with MCT's custom ops, scores exactly what confirm
    reported for the run it came from, and that run is the best one."""
    import numpy as np
    import onnxruntime as ort
    from mct_quantizers import get_ort_session_options

    work, model = project
    out = tmp_path / "exported"
    result = repcurate.confirm(work / "repset", model, work / "eval", random_sets=1, first_n=False,
                               bias_correction=(True, False), weights_bits=2, export=out, trust_set=True)
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.onnx"]
    description = json.loads((out / "export.json").read_text())
    assert description == {k: v for k, v in result.export.items() if k != "dir"}
    best = max(result.arms, key=lambda a: a["metric"]["top1"])
    assert description["metric"]["top1"] == best["metric"]["top1"]
    assert description["weights_bits"] == 2 and description["framework"] == "torch"
    x, labels = _eval_tensors(work, model.replace(":make_model", ":preprocess"))
    session = ort.InferenceSession(str(out / "model.onnx"), get_ort_session_options())
    logits = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    assert round(float(np.mean(logits.argmax(1) == np.array(labels))), 6) == description["metric"]["top1"]
    assert result.to_dict()["export"]["file"] == "model.onnx"


def test_export_into_a_non_empty_directory_is_refused_before_any_work(project, tmp_path, cli):
    work, model = project
    out = tmp_path / "occupied"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
                 "--export", str(out))
    assert result.returncode == 2
    assert "not empty and not written by repcurate" in result.stderr
    assert "PTQ" not in result.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_eval_folders_that_are_not_the_models_classes_fall_back_to_fidelity(project, tmp_path):
    """Eval folders named after other classes must not be scored as if folder k were output k."""
    from repcurate.example_data import write_digits_folder

    work, model = project
    other = tmp_path / "eval"
    write_digits_folder(other, per_class=dict.fromkeys(range(3), 10), offset=100)
    for folder in sorted(other.iterdir()):
        folder.rename(other / f"kind-{folder.name}")
    result = repcurate.confirm(work / "repset", model, other, random_sets=0, first_n=False, bias_correction=(True,),
                               trust_set=True)
    assert result.metric == "agreement"
    # the classification task's own metrics, plus the raw outputs' fidelity that every task reports
    assert set(result.float) == {"agreement", "kl", "sqnr_db", "cosine", "sqnr_db_0", "cosine_0"}
