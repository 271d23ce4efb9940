"""An Ultralytics checkpoint end to end through the real CLI with `--model best.pt` and no other model flag:
build (with the Ultralytics view), check, confirm (real MCT, ONNX export), report and export; YOLO11n too;
Ultralytics' own dataset loader reads the emitted data.yaml; an untraceable model stops confirm with exit 3
(and the doctor at its preflight) before any eval image is decoded."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cli_asserts import assert_one_line_error
from tests.unit.frameworks.ultralytics_testdata import IMGSZ, detection_model, digits_yolo, require_ultralytics, save_checkpoint

UNTRACEABLE = """
import torch
from ultralytics.nn.tasks import DetectionModel


class Wrapped(torch.nn.Module):
    '''The Ultralytics model called as is: its Detect head recomputes anchors on a shape change (not traceable).'''

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = DetectionModel("yolov8n.yaml", verbose=False).eval()  # nc as in the yaml: nothing logged

    def forward(self, x):
        return self.net(x)[0]


def make():
    return Wrapped()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("ultralytics_cli")
    require_ultralytics(work / "config")
    data = digits_yolo(work / "data")
    for name in ("yolov8n", "yolo11n"):
        save_checkpoint(detection_model(f"{name}.yaml"), work / f"{name}.pt")
    (work / "wrapped.py").write_text(UNTRACEABLE)
    return work, data


@pytest.fixture(scope="module")
def built(project, cli):
    work, data = project
    run = cli("build", "--train-dir", str(data), "--model", str(work / "yolov8n.pt"), "--out", str(work / "set"),
              "--size", "8", "--emit", "yolo", "--format", "json")
    assert run.returncode == 0, run.stderr
    return work / "set"


def test_yolov8n_checkpoint_through_every_command_with_only_the_model_flag(project, built, cli):
    work, data = project
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["model"]["framework"] == "ultralytics" and manifest["model"]["layer"] == "Detect:input"
    assert manifest["preprocessing"]["spec"] == f"repcurate.data.geometry:letterbox_{IMGSZ}"
    assert manifest["preprocessing"]["sample_shape"] == [3, IMGSZ, IMGSZ]

    check = cli("check", "--repset", str(built), "--eval-dir", str(data), "--model", str(work / "yolov8n.pt"),
                "--format", "json", "--output", str(work / "check.json"))
    assert check.returncode in (0, 1), check.stderr  # 8 images fail the set-size gate: a verdict, not an error
    checks = {c["id"]: c for c in json.loads((work / "check.json").read_text())["checks"]}
    assert checks["preprocessing_parity"]["status"] == "pass" and checks["activation_ranges"]["status"] != "error"
    assert checks["distribution_shift"]["status"] in ("pass", "warn")

    confirm = cli("confirm", "--repset", str(built), "--eval-dir", str(data), "--model", str(work / "yolov8n.pt"),
                  "--random-sets", "1", "--no-first-n", "--bias-correction", "off", "--max-eval", "10",
                  "--export", str(work / "quantized"), "--format", "json", "--output", str(work / "confirm.json"))
    assert confirm.returncode == 0, confirm.stderr
    result = json.loads((work / "confirm.json").read_text())
    assert result["metric"] == "map" and result["settings"]["task"] == "detection"
    assert result["settings"]["framework"] == "ultralytics" and result["settings"]["reference"] == "ground truth"
    assert [a["set"] for a in result["arms"]] == ["curated", "random-0"]
    assert all(0.0 <= a["metric"]["map"] <= 1.0 and "sqnr_db_0" in a["metric"] for a in result["arms"])
    assert (work / "quantized" / "model.onnx").stat().st_size > 100_000

    report = cli("report", "--repset", str(built), "--check", str(work / "check.json"), "--confirm",
                 str(work / "confirm.json"), "--out", str(work / "report.html"))
    assert report.returncode == 0, report.stderr
    assert 'id="confirm"' in (work / "report.html").read_text(encoding="utf-8")
    export = cli("export", "--repset", str(built), "--to", "npz", "--out", str(work / "npz"),
                 "--onnx-model", str(work / "quantized" / "model.onnx"))  # its input name keys the samples
    assert export.returncode == 0, export.stderr
    [npz] = list((work / "npz").glob("*.npz"))
    with np.load(npz) as arrays:
        assert next(iter(arrays.values())).shape == (8, 3, IMGSZ, IMGSZ)


def test_ultralytics_reads_the_emitted_dataset(project, built):
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    manifest = json.loads((built / "manifest.json").read_text())
    data = check_det_dataset(str(built / "data.yaml"))
    assert data["names"] == {0: "zero", 1: "one", 2: "two"} and data["nc"] == 3
    dataset = YOLODataset(img_path=data["train"], data=data, task="detect", imgsz=IMGSZ, augment=False)
    assert len(dataset) == len(manifest["samples"]) == 8
    boxes = sum(len(label["cls"]) for label in dataset.labels)
    root = built.parent / "data"
    expected = sum(len((root / "labels" / "train" / f"{s['path'].rsplit('/', 1)[-1][:-4]}.txt").read_text().split("\n")) - 1
                   for s in manifest["samples"])
    assert boxes == expected > 0


def test_yolo11n_checkpoint_builds_and_confirms(project, cli):
    work, data = project
    build = cli("build", "--train-dir", str(data), "--model", str(work / "yolo11n.pt"), "--out", str(work / "set11"),
                "--size", "8")
    assert build.returncode == 0, build.stderr
    confirm = cli("confirm", "--repset", str(work / "set11"), "--eval-dir", str(data), "--model", str(work / "yolo11n.pt"),
                  "--random-sets", "0", "--no-first-n", "--bias-correction", "off", "--max-eval", "10",
                  "--format", "json")
    assert confirm.returncode == 0, confirm.stderr
    [arm] = json.loads(confirm.stdout)["arms"]
    assert arm["set"] == "curated" and "map50" in arm["metric"]


def test_untraceable_model_stops_confirm_with_exit_3_before_any_eval_image(project, built, cli):
    work, data = project
    model = f"{work / 'wrapped.py'}:make"
    started = time.perf_counter()
    run = cli("confirm", "--repset", str(built), "--eval-dir", str(data), "--model", model,
              "--preprocess", f"repcurate.data.geometry:letterbox_{IMGSZ}", "--random-sets", "1")
    seconds = time.perf_counter() - started
    assert_one_line_error(run, 3, "cannot read the model", "--model best.pt")
    assert "PTQ" not in run.stderr and "scoring" not in run.stderr and "internal error" not in run.stderr
    doctor = cli("doctor", "--model", model, "--repset", str(built), "--eval-dir", str(data),
                 "--preprocess", f"repcurate.data.geometry:letterbox_{IMGSZ}", "--format", "json")
    assert doctor.returncode == 1, doctor.stderr
    [preflight] = json.loads(doctor.stdout)["findings"]  # the check suite did not run: nothing was decoded
    assert preflight["step"] == "torch.fx preflight" and preflight["status"] == "problem"
    assert "--model best.pt" in preflight["advice"][0]
    assert seconds < 120  # imports and a trace: no calibration set drawn, no eval image decoded


def test_a_checkpoint_named_only_by_the_set_is_never_loaded(project, built, cli, tmp_path):
    _work, data = project
    foreign = Path(shutil.copytree(built, tmp_path / "foreign-set"))
    (foreign / "manifest.sig").unlink()  # a set from elsewhere: not signed by this user's key
    run = cli("check", "--repset", str(foreign), "--eval-dir", str(data))  # no --model: the set names yolov8n.pt
    assert_one_line_error(run, 2, "model.spec", "yolov8n.pt", "--trust-set")


def test_doctor_on_a_yolov8n_checkpoint_measures_the_head_fix(project, built, cli):
    """With only the model flag, the doctor finds the checkpoint's box decoding and measures the head fix (16-bit
    activations there, concat_threshold_update, IMX500 TPC 4.0) beside MCT's defaults."""
    work, data = project
    doctor = cli("doctor", "--model", str(work / "yolov8n.pt"), "--repset", str(built), "--eval-dir", str(data),
                 "--no-checks", "--budget-minutes", "4", "--batch-size", "4", "--format", "json")
    assert doctor.returncode in (0, 1) and "Traceback" not in doctor.stderr, doctor.stderr[-2000:]
    found = json.loads(doctor.stdout)
    head = next(f for f in found["findings"] if f["step"] == "detection head (16-bit box decoding)")
    assert head["status"] in ("fix found", "not significant", "no gain"), head
    assert head["details"]["tpc"] == "imx500:4.0" and set(head["details"]["activation_bits"].values()) == {16}
    [trial] = head["experiments"]
    assert trial["metric"] is not None and trial["settings"]["activation_16bit_nodes"] == head["details"]["activation_16bit_nodes"]
    assert found["settings"]["options"]["batch_size"] == 4
