"""No output flag of any command may land on a file an annotated or listed dataset reads (YOLO data.yaml with its
images and labels, a COCO JSON with its image folder, a CSV list with its images), through the real CLI: each
attempt exits 2 with one line naming the input, and the dataset is byte-identical afterwards."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.cli_asserts import assert_one_line_error
from tests.e2e.test_headless_models import MODELS
from tests.unit.data.annotated_testdata import compose, write_coco, write_yolo_splits
from tests.unit.evaluate.test_load_eval import objects


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory, cli) -> Path:
    work = tmp_path_factory.mktemp("annotated_output_safety")
    train, val = compose(objects(12, 1), seed=1), compose(objects(6, 2), seed=2)
    write_yolo_splits(work / "ds", {"train": train, "val": val})
    write_coco(work / "coco" / "instances_val.json", work / "coco" / "pictures", val)
    listed = work / "listed"
    listed.mkdir()
    for name in sorted(p.name for p in (work / "ds" / "images" / "val").iterdir()):
        (listed / name).write_bytes((work / "ds" / "images" / "val" / name).read_bytes())
    (work / "eval.csv").write_text("path\n" + "".join(f"listed/{p.name}\n" for p in sorted(listed.iterdir())))
    (work / "models.py").write_text(MODELS)
    models = work / "models.py"
    built = cli("build", "--train-dir", str(work / "ds" / "data.yaml"), "--out", str(work / "set"), "--model",
                f"{models}:detector", "--preprocess", f"{models}:preprocess", "--size", "6", "--no-cache", "-q")
    assert built.returncode == 0, built.stderr[-2000:]
    return work


def _model_options(project: Path) -> list[str]:
    models = project / "models.py"
    return ["--model", f"{models}:detector", "--preprocess", f"{models}:preprocess"]


def _first(folder: Path) -> Path:
    return sorted(folder.iterdir())[0]


# (command, eval source, output option, output path) — every one lands on an input of that command.
CASES = {
    "check --output onto a YOLO label": ("check", "ds/data.yaml", "--output", "ds/labels/val/{label}"),
    "check --report onto a YOLO image": ("check", "ds/data.yaml", "--report", "ds/images/val/{image}"),
    "check --output onto the data.yaml": ("check", "ds/data.yaml", "--output", "ds/data.yaml"),
    "check --output beside the train labels": ("check", "ds/data.yaml", "--output", "ds/labels/train/new.json"),
    "confirm --output onto a COCO image": ("confirm", "coco/instances_val.json", "--output", "coco/pictures/{image}"),
    "confirm --output onto the COCO JSON": ("confirm", "coco/instances_val.json", "--output", "coco/instances_val.json"),
    "doctor --report onto a listed image": ("doctor", "eval.csv", "--report", "listed/{image}"),
    "doctor --report onto the list file": ("doctor", "eval.csv", "--report", "eval.csv"),
    "check --output onto the set's training image": ("check", "eval.csv", "--output", "ds/images/train/{image}"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_eval_commands_never_write_onto_a_dataset_input(cli, project: Path, case: str) -> None:
    command, source, option, target = CASES[case]
    image = _first(project / "ds" / "images" / "val").name
    target = target.format(image=image, label=Path(image).with_suffix(".txt").name)
    before = tree_digest(project)
    arguments = [command, "--repset", str(project / "set"), "--eval-dir", str(project / source), option,
                 str(project / target)]
    if command != "check":
        arguments += _model_options(project)
    result = cli(*arguments)
    assert_one_line_error(result, 2, option, "fix:")
    assert tree_digest(project) == before


@pytest.mark.parametrize("target", ["ds/images/train/{image}", "ds/labels/train/{label}", "ds/data.yaml"])
def test_build_report_never_overwrites_the_yolo_dataset(cli, project: Path, tmp_path: Path, target: str) -> None:
    image = _first(project / "ds" / "images" / "train").name
    report = project / target.format(image=image, label=Path(image).with_suffix(".txt").name)
    before = tree_digest(project)
    result = cli("build", "--train-dir", str(project / "ds" / "data.yaml"), "--out", str(tmp_path / "set"),
                 *_model_options(project), "--size", "4", "--no-cache", "--report", str(report))
    assert_one_line_error(result, 2, "--report", "fix:")
    assert tree_digest(project) == before
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("out", ["ds/labels", "ds/images/val", "coco"])
def test_build_out_never_replaces_a_dataset_folder(cli, project: Path, out: str) -> None:
    before = tree_digest(project)
    train = "coco/instances_val.json" if out == "coco" else "ds/data.yaml"
    result = cli("build", "--train-dir", str(project / train), "--out", str(project / out), "--overwrite",
                 *_model_options(project), "--size", "4", "--no-cache")
    assert_one_line_error(result, 2, "--out", "fix:")
    assert tree_digest(project) == before


def test_confirm_export_never_lands_in_the_eval_images(cli, project: Path) -> None:
    before = tree_digest(project)
    result = cli("confirm", "--repset", str(project / "set"), "--eval-dir", str(project / "coco" / "instances_val.json"),
                 *_model_options(project), "--export", str(project / "coco" / "pictures" / "exported"))
    assert_one_line_error(result, 2, "--export", "fix:")
    assert tree_digest(project) == before


def test_report_out_never_overwrites_the_sets_training_images(cli, project: Path) -> None:
    image = _first(project / "ds" / "images" / "train")
    before = tree_digest(project)
    result = cli("report", "--repset", str(project / "set"), "--out", str(image))
    assert_one_line_error(result, 2, "--out", "fix:")
    assert tree_digest(project) == before


def test_export_overwrite_never_replaces_another_set(cli, project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    built = cli("build", "--train-dir", str(project / "ds" / "data.yaml"), "--out", str(other),
                *_model_options(project), "--size", "4", "--no-cache", "-q")
    assert built.returncode == 0, built.stderr[-2000:]
    before = tree_digest(other)
    result = cli("export", "--repset", str(project / "set"), "--to", "npz", "--out", str(other), "--overwrite")
    assert_one_line_error(result, 2, "holds a repcurate set", "fix:")
    assert tree_digest(other) == before
    assert json.loads((other / "manifest.json").read_text())["tool"]["name"] == "repcurate"
