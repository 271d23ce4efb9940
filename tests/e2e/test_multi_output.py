"""A model whose forward returns a TUPLE of tensors (a box-like regression head and a class head) goes through
`repcurate confirm` and `repcurate doctor` scored by the fidelity task (per-output SQNR and cosine similarity to
the float model) instead of crashing on the tuple. Real MCT, real data, an untrained seeded model."""
from __future__ import annotations

import json

import pytest

import repcurate
from repcurate.example_data import write_digits_folder

TWO_HEADS = '''
import numpy as np
import torch
import torch.nn as nn
from PIL import Image


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.boxes = nn.Linear(64, 4)
        self.classes = nn.Linear(64, 10)

    def forward(self, x):
        features = self.features(x)
        return self.boxes(features), self.classes(features)


def make_model():
    torch.manual_seed(0)
    return TwoHeads().eval()


def preprocess(image):
    grey = image.convert("L").resize((8, 8), Image.BILINEAR)
    return ((np.asarray(grey, dtype=np.float32) / 255.0 - 0.3) / 0.4)[None]
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("two-heads")
    (work / "two_heads.py").write_text(TWO_HEADS)
    model, preprocess = f"{work / 'two_heads.py'}:make_model", f"{work / 'two_heads.py'}:preprocess"
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 12))
    write_digits_folder(work / "eval", per_class=dict.fromkeys(range(10), 10), offset=12)
    repcurate.build(work / "train", work / "repset", size=20, model=model, preprocess=preprocess, use_cache=False,
                    progress=False)
    return work, model


def _sane_fidelity(metrics: dict) -> None:
    assert {"cosine", "sqnr_db", "cosine_0", "sqnr_db_0", "cosine_1", "sqnr_db_1"} <= set(metrics)
    for key in ("sqnr_db", "sqnr_db_0", "sqnr_db_1"):
        assert metrics[key] > 0.0, (key, metrics)  # 8-bit weights and activations keep the signal above the noise
    for key in ("cosine", "cosine_0", "cosine_1"):
        assert 0.0 < metrics[key] <= 1.0, (key, metrics)


def test_confirm_scores_a_tuple_output_model_by_fidelity(project, cli):
    work, model = project
    out = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
              "--random-sets", "1", "--no-first-n", "--bias-correction", "on", "--trust-set", "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["metric"] == "cosine" and report["float"]["cosine"] == 1.0
    assert [a["set"] for a in report["arms"]] == ["curated", "random-0"]
    for arm in report["arms"]:
        _sane_fidelity(arm["metric"])
    text = cli("confirm", "--repset", str(work / "repset"), "--model", model, "--eval-dir", str(work / "eval"),
               "--random-sets", "1", "--no-first-n", "--bias-correction", "on", "--trust-set")
    assert text.returncode == 0 and text.stdout.startswith("cosine on 100 held-out images"), text.stdout


def test_doctor_scores_a_tuple_output_model_by_fidelity(project, cli):
    work, model = project
    out = cli("doctor", "--model", model, "--repset", str(work / "repset"), "--eval-dir", str(work / "eval"),
              "--no-checks", "--budget-minutes", "2", "--trust-set", "--format", "json")
    assert out.returncode in (0, 1), out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["metric"] == "cosine" and report["float"] == 1.0
    assert 0.0 < report["baseline"] <= 1.0 and 0.0 < report["final"] <= 1.0
    assert report["within_tolerance"] == (out.returncode == 0)
    assert report["ptq_runs"] >= 1
