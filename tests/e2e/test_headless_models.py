"""Models without a classifier head run through build → check → confirm → doctor → report from the CLI (issue 15):
a two-head detector (conv backbone, box and class heads, no nn.Linear, tuple output) scored by COCO mAP through a
--postprocess, a multi-scale dict-output model scored by fidelity (SQNR, cosine), and a segmenter scored by mIoU.
Real MCT, real image files, untrained seeded models on 16×16 inputs."""
from __future__ import annotations

import json

import pytest

from repcurate.example_data import write_digits_folder

MODELS = '''
import numpy as np
import torch
import torch.nn as nn
from PIL import Image


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                      nn.SiLU())
        self.box_head = nn.Conv2d(16, 4, 1)
        self.cls_head = nn.Conv2d(16, 3, 1)

    def forward(self, x):
        f = self.backbone(x)
        return self.box_head(f), self.cls_head(f)


class MultiScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.p3 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.p4 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.head3 = nn.Conv2d(8, 7, 1)
        self.head4 = nn.Conv2d(16, 7, 1)

    def forward(self, x):
        s = self.stem(x)
        return {"p3": self.head3(self.p3(s)), "p4": self.head4(self.p4(s))}


class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.classes = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.classes(self.encoder(x))


def detector():
    torch.manual_seed(0)
    return Detector().eval()


def multi_scale():
    torch.manual_seed(0)
    return MultiScale().eval()


def segmenter():
    torch.manual_seed(0)
    return Segmenter().eval()


def preprocess(image):
    rgb = image.convert("RGB").resize((16, 16), Image.BILINEAR)
    return ((np.asarray(rgb, dtype=np.float32) / 255.0 - 0.3) / 0.4).transpose(2, 0, 1)


def decode(outputs):
    """Per cell of the 8×8 maps: a box around the cell (input pixels), its best class and probability."""
    boxes, classes = outputs
    n, _, h, w = boxes.shape
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    results = []
    for i in range(n):
        cx, cy = (xs + 0.5 + np.tanh(boxes[i, 0])) * 2, (ys + 0.5 + np.tanh(boxes[i, 1])) * 2
        bw, bh = np.exp(np.clip(boxes[i, 2], -2, 2)) * 2, np.exp(np.clip(boxes[i, 3], -2, 2)) * 2
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4)
        prob = 1 / (1 + np.exp(-classes[i].reshape(classes.shape[1], -1)))
        results.append((xyxy, prob.max(0), prob.argmax(0)))
    return results
'''

#: factory → (the feature layer the default rule picks, confirm's extra options, its headline metric)
KINDS = {
    "detector": ("backbone.3", ["--postprocess", "{models}:decode"], "map"),
    "multi_scale": ("stem.1", [], "cosine"),
    "segmenter": ("encoder.3", ["--task", "segmentation"], "miou"),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    work = tmp_path_factory.mktemp("headless")
    (work / "models.py").write_text(MODELS)
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 4))
    write_digits_folder(work / "eval", per_class=dict.fromkeys(range(10), 3), offset=4)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_headless_model_goes_through_every_command(folders, cli, kind):
    work = folders
    layer, options, metric = KINDS[kind]
    models = str(work / "models.py")
    options = [o.format(models=models) for o in options]
    model, preprocess, repset = f"{models}:{kind}", f"{models}:preprocess", work / f"set-{kind}"
    build = cli("build", "--train-dir", str(work / "train"), "--out", str(repset), "--model", model,
                "--preprocess", preprocess, "--size", "10", "--no-cache")
    assert build.returncode == 0, build.stderr[-2000:]
    assert f"has no nn.Linear head: embedding with {layer}" in build.stderr
    assert json.loads((repset / "manifest.json").read_text())["model"]["layer"] == layer

    check = cli("check", "--repset", str(repset), "--eval-dir", str(work / "eval"), "--model", model, "--trust-set",
                "--no-cache", "--format", "json", "--output", str(work / f"check-{kind}.json"))
    assert check.returncode in (0, 1), check.stderr[-2000:]
    report = json.loads((work / f"check-{kind}.json").read_text())
    status = {c["id"]: c["status"] for c in report["checks"]}
    assert {status["duplicates"], status["distribution_shift"]} <= {"pass", "warn"}, report["checks"]  # ran, no error
    assert report["inputs"]["layer"] == layer

    confirm = cli("confirm", "--repset", str(repset), "--model", model, "--eval-dir", str(work / "eval"),
                  "--random-sets", "1", "--no-first-n", "--bias-correction", "on", "--trust-set", *options,
                  "--format", "json", "--output", str(work / f"confirm-{kind}.json"))
    assert confirm.returncode == 0, confirm.stderr[-2000:]
    result = json.loads((work / f"confirm-{kind}.json").read_text())
    assert result["metric"] == metric and result["metric_info"]["unit"] == "points"
    assert result["float"][metric] == 1.0  # unlabelled: the float model is the reference
    for arm in result["arms"]:
        assert 0.0 <= arm["metric"][metric] <= 1.0 and arm["metric"]["sqnr_db_0"] > 0.0, arm

    doctor = cli("doctor", "--model", model, "--repset", str(repset), "--eval-dir", str(work / "eval"),
                 "--budget-minutes", "1", "--trust-set", *options, "--format", "json",
                 "--output", str(work / f"doctor-{kind}.json"))
    assert doctor.returncode in (0, 1), doctor.stderr[-2000:]
    found = json.loads((work / f"doctor-{kind}.json").read_text())
    assert found["metric"] == metric and found["ptq_runs"] >= 1 and 0.0 <= found["baseline"] <= 1.0
    checks = next(f for f in found["findings"] if f["step"] == "representative set")["details"]["checks"]
    assert not [c for c in checks if c["status"] == "error"], checks

    html = work / f"report-{kind}.html"
    rendered = cli("report", "--repset", str(repset), "--check", str(work / f"check-{kind}.json"),
                   "--confirm", str(work / f"confirm-{kind}.json"), "--doctor", str(work / f"doctor-{kind}.json"),
                   "--out", str(html), "--trust-set")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert "points, higher is better" in html.read_text()
