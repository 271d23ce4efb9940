"""`repcurate confirm` on a digits CNN trained in the test (real MCT, real data)."""
from __future__ import annotations

import json

import pytest

import repcurate
from repcurate.errors import InputError
from repcurate.example_data import write_digits_folder
from tests.e2e.model_files import TORCH_MODEL_SOURCE, train_digits_cnn


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("confirm")
    write_digits_folder(work / "train", per_class={d: 60 for d in range(10)})
    write_digits_folder(work / "eval", per_class={d: 40 for d in range(10)}, offset=60)
    weights = work / "digits.pt"
    train_digits_cnn(weights)
    model_file = work / "digits_model.py"
    model_file.write_text(TORCH_MODEL_SOURCE.format(weights=str(weights)))
    repcurate.build(work / "train", work / "repset", size=32, model=f"{model_file}:make_model",
                    preprocess=f"{model_file}:preprocess", use_cache=False, progress=False)
    return work, f"{model_file}:make_model"


def test_confirm_table_shape_and_reproducibility(project):
    work, model = project
    kwargs = dict(random_sets=2, weights_bits=2, seed=5)
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
        repcurate.confirm(work / "repset", model, work / "train", random_sets=1, bias_correction=(True,))


def test_confirm_cli_json(project, cli):
    work, model = project
    result = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
                 "--random-sets", "1", "--bias-correction", "on", "--no-first-n", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metric"] == "top1" and "top1" in report["float"]
    assert [a["set"] for a in report["arms"]] == ["curated", "random-0"]
    text = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "train"))
    assert text.returncode == 3 and "also calibration images" in text.stderr and "Traceback" not in text.stderr
