"""Issue 15's "done when" on annotated data: the tuple-output two-head detector and the dict-output multi-scale model
run through build, check, confirm, doctor and report with no error on YOLO and COCO inputs, from the CLI (each
model × each format: built from the train split / train JSON, checked, confirmed and doctored against the labelled
val split / val JSON, scored by mAP through a postprocess, reported) and the library (the public calls on a YOLO
data.yaml). Real MCT, real image files, untrained seeded models on 16×16 inputs, nine eval images."""
from __future__ import annotations

import html as html_lib
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

import repcurate
from tests.e2e.test_headless_models import MODELS
from tests.unit.data.annotated_testdata import compose, write_coco, write_yolo_splits
from tests.unit.evaluate.test_load_eval import objects

#: A postprocess for the multi-scale model: its finest map (7 channels: 4 box offsets, 3 class logits, one cell
#: per input pixel) decoded like the two-head detector's, whatever order the dict's outputs come in.
DECODE_SCALES = '''

def decode_scales(outputs):
    finest = max(outputs, key=lambda o: o.shape[-1])
    n, _, h, w = finest.shape
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    results = []
    for i in range(n):
        box, logits = finest[i, :4], finest[i, 4:]
        cx, cy = xs + 0.5 + np.tanh(box[0]), ys + 0.5 + np.tanh(box[1])
        bw, bh = np.exp(np.clip(box[2], -2, 2)) * 2, np.exp(np.clip(box[3], -2, 2)) * 2
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4)
        prob = 1 / (1 + np.exp(-logits.reshape(logits.shape[0], -1)))
        results.append((xyxy, prob.max(0), prob.argmax(0)))
    return results
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("annotated_pipeline")
    train, val = compose(objects(16, 5), seed=5), compose(objects(8, 6), seed=6)
    write_yolo_splits(work / "ds", {"train": train, "val": val})
    for split, images in (("train", train), ("val", val)):
        write_coco(work / "ds" / "annotations" / f"instances_{split}.json", work / "ds" / "images" / split, images,
                   write_images=False, relative_to=work / "ds")
    (work / "models.py").write_text(MODELS + DECODE_SCALES)
    return work


def _ok(result) -> None:
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr[-2000:]


def _doctor_ran(path: Path) -> dict:
    found = json.loads(path.read_text())
    assert found["metric"] == "map" and found["ptq_runs"] >= 1 and 0.0 <= found["baseline"] <= 1.0
    checks = next(f for f in found["findings"] if f["step"] == "representative set")["details"]["checks"]
    assert not [c for c in checks if c["status"] == "error"], checks
    return found


#: model factory → (its postprocess, the feature layer build picks)
MODELS_UNDER_TEST = {"detector": ("decode", "backbone.3"), "multi_scale": ("decode_scales", "stem.1")}


def _sources(project: Path, fmt: str) -> tuple[list[str], list[str]]:
    """``--train-dir`` and ``--eval-dir`` options of the YOLO data.yaml (train / val split) or the COCO JSONs."""
    if fmt == "yolo":
        data = str(project / "ds" / "data.yaml")
        return ["--train-dir", data], ["--eval-dir", data]
    annotations, images = project / "ds" / "annotations", ["--images-dir", str(project / "ds")]
    return (["--train-dir", str(annotations / "instances_train.json"), *images],
            ["--eval-dir", str(annotations / "instances_val.json"), *images])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["yolo", "coco"])
@pytest.mark.parametrize("kind", sorted(MODELS_UNDER_TEST))
def test_every_command_runs_on_annotated_inputs(cli, project: Path, kind: str, fmt: str) -> None:
    models = project / "models.py"
    decoder, layer = MODELS_UNDER_TEST[kind]
    model, repset, name = f"{models}:{kind}", str(project / f"set-{kind}-{fmt}"), f"{kind}-{fmt}"
    train, val = _sources(project, fmt)
    _ok(cli("build", *train, "--out", repset, "--model", model, "--preprocess", f"{models}:preprocess", "--size", "8",
            "--no-cache", "-q"))
    manifest = json.loads((Path(repset) / "manifest.json").read_text())
    assert manifest["layout"] == fmt and manifest["model"]["layer"] == layer and len(manifest["samples"]) == 8
    _ok(cli("check", "--repset", repset, *val, "--model", model, "--trust-set", "--no-cache", "--format", "json",
            "--output", str(project / f"check-{name}.json")))
    checked = json.loads((project / f"check-{name}.json").read_text())
    assert checked["inputs"]["eval_layout"] == fmt and not [c for c in checked["checks"] if c["status"] == "error"]
    post = ["--postprocess", f"{models}:{decoder}"]
    _ok(cli("confirm", "--repset", repset, "--model", model, *val, *post, "--task", "detection", "--random-sets", "1",
            "--no-first-n",
            "--bias-correction", "on", "--trust-set", "--no-cache", "--format", "json",
            "--output", str(project / f"confirm-{name}.json")))
    confirmed = json.loads((project / f"confirm-{name}.json").read_text())
    assert confirmed["settings"]["reference"] == "ground truth" and confirmed["metric"] == "map"
    assert confirmed["settings"]["eval_images"] == 9
    for arm in confirmed["arms"]:  # mAP against the boxes, and the SQNR of each of the model's outputs
        assert 0.0 <= arm["metric"]["map"] <= 1.0 and arm["metric"]["sqnr_db_0"] > 0.0 < arm["metric"]["sqnr_db_1"]
    _ok(cli("doctor", "--model", model, "--repset", repset, *val, *post, "--budget-minutes", "1", "--trust-set",
            "--no-cache", "--format", "json", "--output", str(project / f"doctor-{name}.json")))
    _doctor_ran(project / f"doctor-{name}.json")
    html = project / f"report-{name}.html"
    _ok(cli("report", "--repset", repset, "--check", str(project / f"check-{name}.json"), "--confirm",
            str(project / f"confirm-{name}.json"), "--doctor", str(project / f"doctor-{name}.json"), "--out", str(html),
            "--trust-set"))
    text = html.read_text()
    assert "points, higher is better" in text and "Findings ranked by measured gain (map points)" in text
    # the command lines shown reproduce the runs: the eval source as given (data.yaml / COCO JSON), the postprocess
    shown = {section: html_lib.unescape(re.search(rf"<code>(repcurate {section} [^<]*)</code>", text).group(1))
             for section in ("build", "check", "confirm", "doctor")}
    for section in ("check", "confirm", "doctor"):
        assert shlex.join(val) in shown[section], section
    for section in ("confirm", "doctor"):
        assert shlex.join(post) in shown[section] and f"--model {shlex.quote(model)}" in shown[section], section
    assert "--task detection" in shown["confirm"] and "--task" not in shown["doctor"]
    assert all(shown[section].count("--trust-set") == 1 for section in ("confirm", "doctor"))
    assert ("--images-dir" in shown["build"]) == (fmt == "coco")


@pytest.mark.slow
def test_tuple_detector_through_the_library_calls_on_a_yolo_dataset(project: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("annotated_pipeline_models", project / "models.py")
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    data = project / "ds" / "data.yaml"
    built = repcurate.build(data, tmp_path / "set", size=8, model=models.detector(), preprocess=models.preprocess,
                            use_cache=False, progress=False)
    assert built.manifest["layout"] == "yolo" and built.manifest["objects"]["names"] == ["zero", "one", "two"]
    assert built.representative_set.tensors.shape == (8, 3, 16, 16)
    checked = repcurate.check(tmp_path / "set", data, model=models.detector(), eval_preprocess=models.preprocess,
                              use_cache=False)
    assert not [c for c in checked.to_dict()["checks"] if c["status"] == "error"]
    confirmed = repcurate.confirm(tmp_path / "set", models.detector(), data, preprocess=models.preprocess,
                                  postprocess=models.decode, random_sets=1, first_n=False, bias_correction=(True,),
                                  use_cache=False)
    result = confirmed.to_dict()
    assert result["metric"] == "map" and result["settings"]["reference"] == "ground truth"
    assert [a["set"] for a in result["arms"]] == ["curated", "random-0"]
    found = repcurate.doctor(models.detector(), tmp_path / "set", data, preprocess=models.preprocess,
                             postprocess=models.decode, budget_minutes=1, use_cache=False)
    assert found.to_dict()["metric"] == "map" and found.to_dict()["ptq_runs"] >= 1
    html = repcurate.report_html(tmp_path / "set", tmp_path / "report.html", check=checked, confirm=confirmed,
                                 doctor=found)
    assert "points, higher is better" in html and (tmp_path / "report.html").is_file()
