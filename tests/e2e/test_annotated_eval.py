"""Labelled detection / segmentation eval from the command line (issue 15): a set built from a YOLO train split,
then ``check`` against the val split (no check errors, object classes), ``confirm`` against the val split and
against a COCO JSON of the same images (mAP against ground truth; an exactly right postprocess scores 1.0), against
a segmentation folder (mIoU against masks), and the one-line error without a postprocess. Real MCT on the seeded
two-head detector / segmenter of the headless-model tests, real image files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_asserts import assert_one_line_error
from tests.e2e.test_headless_models import MODELS
from tests.unit.data.annotated_testdata import compose, write_coco, write_segmentation, write_yolo_splits
from tests.unit.evaluate.test_load_eval import BAD, objects, truth_decoder


@pytest.fixture(scope="module")
def project(tmp_path_factory, cli) -> Path:
    work = tmp_path_factory.mktemp("annotated_eval_cli")
    train, val = compose(objects(24, 1), seed=1), compose(objects(9, 2), seed=2)
    write_yolo_splits(work / "ds", {"train": train, "val": val})
    label = work / "ds" / "labels" / "val" / f"{BAD}.txt"
    label.write_text(label.read_text() + "7 0.5 0.5 0.1 0.1\n")
    write_coco(work / "ds" / "annotations" / "instances_val.json", work / "ds" / "images" / "val", val,
               write_images=False, relative_to=work / "ds")
    write_segmentation(work / "seg", compose([[(0, 16), (1, 12)], [(1, 20)], [(0, 10), (1, 14)], []], seed=4))
    (work / "models.py").write_text(MODELS + truth_decoder("truth_yolo", [t for _p, t in val if not t.name.startswith(BAD)])
                                    + truth_decoder("truth_coco", [t for _p, t in val]))
    models = work / "models.py"
    built = cli("build", "--train-dir", str(work / "ds" / "data.yaml"), "--out", str(work / "set"), "--model",
                f"{models}:detector", "--preprocess", f"{models}:preprocess", "--size", "10", "--no-cache", "-q")
    assert built.returncode == 0, built.stderr[-2000:]
    return work


def _confirm(cli, project: Path, name: str, eval_dir: Path, *options: str, model: str = "detector"):
    models = project / "models.py"
    result = cli("confirm", "--repset", str(project / "set"), "--model", f"{models}:{model}", "--eval-dir", str(eval_dir),
                 "--no-first-n", "--bias-correction", "on", "--trust-set", *options, "--format", "json",
                 "--output", str(project / f"{name}.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((project / f"{name}.json").read_text())


def test_check_of_a_yolo_built_set_against_the_val_split_has_no_error(cli, project: Path) -> None:
    models = project / "models.py"
    result = cli("check", "--repset", str(project / "set"), "--eval-dir", str(project / "ds" / "data.yaml"),
                 "--model", f"{models}:detector", "--trust-set", "--no-cache", "--format", "json",
                 "--output", str(project / "check.json"))
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads((project / "check.json").read_text())
    by_id = {c["id"]: c for c in report["checks"]}
    assert not [c for c in report["checks"] if c["status"] == "error"], report["checks"]
    assert report["inputs"]["eval_layout"] == "yolo" and report["inputs"]["eval_images"] == 9  # val, less the bad one
    assert by_id["eval_data"]["details"]["skipped"] == {"label_out_of_range": 1}
    coverage = by_id["class_coverage"]["details"]  # object classes of the eval split, not the quota strata
    assert coverage["reference"] == "eval set" and coverage["unit"] == "object instances"
    assert set(coverage["counts"]) <= {"zero", "one", "two"} and coverage["missing"] == []
    assert set(by_id["set_size"]["details"]["per_class"]) == {"zero", "one", "two"}


@pytest.mark.slow
def test_confirm_on_a_yolo_val_split_scores_map_against_ground_truth(cli, project: Path) -> None:
    result = _confirm(cli, project, "confirm-yolo", project / "ds" / "data.yaml", "--random-sets", "1",
                      "--postprocess", f"{project / 'models.py'}:truth_yolo")
    settings = result["settings"]
    assert settings["reference"] == "ground truth" and settings["task"] == "detection" and settings["eval_images"] == 9
    assert [(s["path"], s["reason"]) for s in settings["eval_skipped"]] == [(f"labels/val/{BAD}.txt", "label_out_of_range")]
    assert result["metric"] == "map" and result["float"]["map"] == result["float"]["map50"] == 1.0
    assert [a["set"] for a in result["arms"]] == ["curated", "random-0"]  # the random arm drawn from the train split
    for arm in result["arms"]:  # an exactly right postprocess: every quantized model's boxes are the true ones
        assert arm["metric"]["map"] == 1.0 and arm["metric"]["sqnr_db_0"] > 0.0, arm


@pytest.mark.slow
def test_confirm_on_a_coco_json_scores_map_against_ground_truth(cli, project: Path) -> None:
    result = _confirm(cli, project, "confirm-coco", project / "ds" / "annotations" / "instances_val.json",
                      "--images-dir", str(project / "ds"), "--random-sets", "0",
                      "--postprocess", f"{project / 'models.py'}:truth_coco")
    assert result["settings"]["reference"] == "ground truth" and result["settings"]["eval_images"] == 10
    assert result["float"]["map"] == 1.0 and result["arms"][0]["metric"]["map"] == 1.0


@pytest.mark.slow
def test_confirm_on_a_segmentation_folder_scores_miou_against_masks(cli, project: Path) -> None:
    result = _confirm(cli, project, "confirm-seg", project / "seg", "--random-sets", "0", model="segmenter")
    assert result["settings"]["task"] == "segmentation" and result["settings"]["reference"] == "ground truth"
    assert result["metric"] == "miou" and result["metric_info"]["unit"] == "points"
    assert 0.0 <= result["float"]["miou"] < 1.0  # an untrained segmenter against the true masks
    assert 0.0 <= result["arms"][0]["metric"]["miou"] <= 1.0


def test_detection_eval_without_a_postprocess_is_a_one_line_usage_error(cli, project: Path) -> None:
    models = project / "models.py"
    result = cli("confirm", "--repset", str(project / "set"), "--model", f"{models}:detector",
                 "--eval-dir", str(project / "ds" / "data.yaml"), "--random-sets", "0", "--no-first-n", "--trust-set")
    assert_one_line_error(result, 2, "data.yaml", "holds detection labels", "fix: pass --postprocess")


@pytest.mark.parametrize("command", ["confirm", "doctor"])
def test_an_explicit_detection_task_without_a_postprocess_is_a_one_line_usage_error(cli, project: Path, command) -> None:
    models = project / "models.py"
    out = project / f"never-{command}.json"
    result = cli(command, "--repset", str(project / "set"), "--model", f"{models}:detector", "--task", "detection",
                 "--eval-dir", str(project / "ds" / "data.yaml"), "--trust-set", "--format", "json", "--output", str(out))
    assert_one_line_error(result, 2, "data.yaml", "--task detection", "not decoded boxes", "fix: pass --postprocess")
    assert not out.exists()
