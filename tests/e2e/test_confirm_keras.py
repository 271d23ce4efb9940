"""`repcurate confirm` on a Keras digits CNN trained in the test (real MCT Keras path, real data)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import repcurate
from repcurate.errors import InputError

tf = pytest.importorskip("tensorflow")


def test_keras_confirm_table_bias_correction_and_reproducibility(keras_project):
    work, model, _ = keras_project
    kwargs = {"random_sets": 2, "first_n": False, "weights_bits": 2, "seed": 3, "trust_set": True}  # the set names the test's own files
    first = repcurate.confirm(work / "repset", model, work / "eval", **kwargs)
    assert first.settings["framework"] == "keras"
    assert first.metric == "top1" and first.float["top1"] > 0.7
    assert [(a["set"], a["bias_correction"]) for a in first.arms] == [
        (name, bc) for name in ("curated", "random-3", "random-4") for bc in (True, False)]
    curated = {a["bias_correction"]: a["metric"] for a in first.arms if a["set"] == "curated"}
    assert curated[True] != curated[False]  # two different quantized models
    assert all(a["metric"]["top1"] < first.float["top1"] + 0.05 for a in first.arms)  # 2-bit kernels cost accuracy
    second = repcurate.confirm(work / "repset", model, work / "eval", **kwargs)
    assert [a["metric"] for a in second.arms] == [a["metric"] for a in first.arms]


def test_keras_export_is_a_loadable_quantized_model_scoring_as_reported(keras_project, tmp_path):
    from mct_quantizers import keras_load_quantized_model

    from repcurate.data.preprocess import make_preprocessor
    from repcurate.data.sources import scan
    from repcurate.embed.pipeline import load_tensors

    work, model, preprocess = keras_project
    out = tmp_path / "exported"
    result = repcurate.confirm(work / "repset", model, work / "eval", random_sets=1, first_n=False,
                               bias_correction=(True,), weights_bits=4, export=out, trust_set=True)
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.keras"]
    description = json.loads((out / "export.json").read_text())
    assert description["framework"] == "keras" and description["weights_bits"] == 4
    quantized = keras_load_quantized_model(str(out / "model.keras"))
    source = scan(work / "eval")
    x = load_tensors(source.records, source.root, make_preprocessor(preprocess))
    labels = np.array([int(r.label) for r in source.records])
    top1 = float(np.mean(np.asarray(quantized(x, training=False)).argmax(1) == labels))
    assert round(top1, 6) == description["metric"]["top1"] == max(a["metric"]["top1"] for a in result.arms)


def test_channels_first_tensors_for_a_keras_model_get_a_clear_error(keras_project):
    work, model, _ = keras_project
    with pytest.raises(InputError, match="channels-last"):
        repcurate.confirm(work / "repset", model, work / "eval", random_sets=0, first_n=False,
                          bias_correction=(True,), preprocess=lambda image: np.zeros((1, 8, 8), np.float32))


def test_keras_confirm_cli_markdown(keras_project, cli):
    work, model, _ = keras_project
    result = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
                 "--random-sets", "1", "--no-first-n", "--bias-correction", "on", "--weights-bits", "4",
                 "--format", "markdown", "--trust-set")  # the set names the test's own preprocessing file
    assert result.returncode == 0, result.stderr
    assert "| bias correction | curated | random mean ± std | random worst | first-N |" in result.stdout
    assert "PTQ curated" in result.stderr  # each PTQ run logs its time
