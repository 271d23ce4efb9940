"""The command line on hostile dataset files: a FIFO label, a label symlinked to /dev/zero and one to a secrets
file (build and check finish, with reasons; nothing of the secrets lands in the manifest), billion-laughs and
badly typed data.yaml files, every input nested 100,000 levels deep, COCO file_name escapes, and a set whose
manifest lost its calibration record. Every command runs with a wall-clock limit: a hang fails the test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_asserts import assert_one_line_error
from tests.e2e.test_cli_options import TINY_MODEL
from tests.unit.data.annotated_testdata import compose, write_coco, write_yolo
from tests.unit.io.test_safe_read import BILLION_LAUGHS, DEEP

SECRET = "root:x:0:0:SECRET-TOKEN-1234:/root:/bin/bash\n"
NESTED = "[" * DEEP + "]" * DEEP


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``repcurate ARGS`` with a wall-clock limit (``subprocess.TimeoutExpired`` fails the test)."""
    exe = Path(sys.executable).parent / "repcurate"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "repcurate"]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("file_safety")
    images = compose([[(i % 3, 10 + 2 * (i % 4))] for i in range(14)], seed=11)
    write_yolo(work / "ds", images)
    (work / "tiny.py").write_text(TINY_MODEL)
    built = _build(work, work / "ds" / "data.yaml", work / "set")
    assert built.returncode == 0, built.stderr[-2000:]
    return work


def _model(work: Path) -> list[str]:
    return ["--model", f"{work / 'tiny.py'}:make_model", "--preprocess", f"{work / 'tiny.py'}:preprocess"]


def _build(work: Path, source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("build", "--train-dir", str(source), "--out", str(out), "--size", "6", "--no-cache", *_model(work),
               "-q", *extra)


def test_build_and_check_finish_on_fifo_dev_zero_and_secret_labels(project: Path, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(project / "ds", ds)
    labels = sorted((ds / "labels" / "train").glob("*.txt"))
    secrets = tmp_path / "passwd"
    secrets.write_text(SECRET)
    for label in labels[:3]:
        label.unlink()
    os.mkfifo(labels[0])
    os.symlink("/dev/zero", labels[1])
    os.symlink(secrets, labels[2])
    built = _build(project, ds / "data.yaml", tmp_path / "set")
    assert built.returncode == 0, built.stderr[-2000:]
    text = (tmp_path / "set" / "manifest.json").read_text()
    skipped = {Path(s["path"]).name: s for s in json.loads(text)["skipped"]}
    assert skipped[labels[0].name]["reason"] == skipped[labels[1].name]["reason"] == "not_a_regular_file"
    assert skipped[labels[2].name] == {"path": f"labels/train/{labels[2].name}", "reason": "unparseable_label",
                                       "detail": "line 1: value 1 is not a number"}
    assert "SECRET" not in text and "root:x" not in text
    for sample in json.loads(text)["samples"]:  # the size each read of the sample is capped at
        assert sample["size_bytes"] == (ds / sample["path"]).stat().st_size
    checked = run("check", "--repset", str(tmp_path / "set"), "--eval-dir", str(ds / "data.yaml"), "--split", "train",
                  "--model", f"{project / 'tiny.py'}:make_model", "--trust-set", "--no-cache", "--format", "json",
                  "--output", str(tmp_path / "check.json"))
    assert checked.returncode in (0, 1), checked.stderr[-2000:]
    eval_data = {c["id"]: c for c in json.loads((tmp_path / "check.json").read_text())["checks"]}["eval_data"]
    assert eval_data["details"]["skipped"] == {"not_a_regular_file": 2, "unparseable_label": 1}


@pytest.mark.parametrize("kind", ["data.yaml", "instances.json", "list.jsonl"])
def test_a_training_source_nested_100k_deep_is_exit_3_naming_it(project: Path, tmp_path: Path, kind: str) -> None:
    source = tmp_path / "src" / kind  # a folder of its own: a COCO JSON's folder is its image folder (an input)
    source.parent.mkdir()
    if kind == "data.yaml":
        source.write_text(f"train: images\nnames: {NESTED}\n")
    elif kind == "instances.json":
        source.write_text('{"images": [], "categories": ' + NESTED + "}")
    else:
        source.write_text('{"path": "a.png", "label": ' + NESTED + "}\n")
    result = _build(project, source, tmp_path / "out")
    assert_one_line_error(result, 3, str(source))
    assert not (tmp_path / "out").exists()


def test_a_billion_laughs_yaml_and_badly_typed_names_are_exit_3(project: Path, tmp_path: Path) -> None:
    laughs = tmp_path / "data.yaml"
    laughs.write_text(BILLION_LAUGHS)
    assert_one_line_error(_build(project, laughs, tmp_path / "out"), 3, str(laughs), "alias")
    typed = tmp_path / "typed.yaml"
    typed.write_text(f"path: {project / 'ds'}\ntrain: images/train\nnames: [[1, 2], {{a: b}}, null, 3.5]\n")
    assert_one_line_error(_build(project, typed, tmp_path / "out"), 3, str(typed), "names")


def _deep_copy_of_set(project: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "set"
    shutil.copytree(project / "set", copy)
    return copy


@pytest.mark.parametrize("what", ["manifest", "check JSON", "confirm JSON", "doctor JSON"])
def test_report_inputs_nested_100k_deep_are_exit_3_naming_them(project: Path, tmp_path: Path, what: str) -> None:
    repset = _deep_copy_of_set(project, tmp_path)
    args = ["report", "--repset", str(repset), "--out", str(tmp_path / "r.html")]
    if what == "manifest":
        bad = repset / "manifest.json"
    else:
        bad = tmp_path / f"{what.split()[0]}.json"
        args += [f"--{what.split()[0]}", str(bad)]
    bad.write_text('{"verdict": ' + NESTED + "}")
    assert_one_line_error(run(*args), 3, str(bad))
    assert not (tmp_path / "r.html").exists()


def test_a_class_map_nested_100k_deep_is_exit_3_naming_it(project: Path, tmp_path: Path) -> None:
    class_map = tmp_path / "map.json"
    class_map.write_text('{"zero": ' + NESTED + "}")
    result = run("confirm", "--repset", str(project / "set"), "--eval-dir", str(project / "ds" / "data.yaml"),
                 "--model", f"{project / 'tiny.py'}:make_model", "--trust-set", "--class-map", str(class_map))
    assert_one_line_error(result, 3, str(class_map))


def test_a_set_without_its_calibration_record_is_refused(project: Path, tmp_path: Path) -> None:
    repset = _deep_copy_of_set(project, tmp_path)
    manifest = json.loads((repset / "manifest.json").read_text())
    del manifest["calibration"]
    (repset / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(run("report", "--repset", str(repset), "--out", str(tmp_path / "r.html")), 3,
                          "calibration integrity record")
    assert_one_line_error(run("export", "--repset", str(repset), "--to", "npz", "--out", str(tmp_path / "x")), 3,
                          "calibration integrity record")


def test_coco_file_names_outside_the_image_folder_need_allow_outside_root(project: Path, tmp_path: Path) -> None:
    images = compose([[(i % 3, 12)] for i in range(8)], seed=12)
    json_path = write_coco(tmp_path / "ds" / "instances.json", tmp_path / "ds" / "images", images)
    write_coco(tmp_path / "other.json", tmp_path / "outside", images[:1])
    data = json.loads(json_path.read_text())
    data["images"][0]["file_name"] = "../outside/img000.png"
    data["images"][1]["file_name"] = str(tmp_path / "outside" / "img000.png")
    json_path.write_text(json.dumps(data))
    built = _build(project, json_path, tmp_path / "set")
    assert built.returncode == 0, built.stderr[-2000:]
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert [s["reason"] for s in manifest["skipped"]] == ["outside_image_root", "outside_image_root"]
    assert all("outside" not in s["path"] for s in manifest["samples"])
    allowed = _build(project, json_path, tmp_path / "set2", "--allow-outside-root")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert json.loads((tmp_path / "set2" / "manifest.json").read_text())["skipped"] == []


@pytest.mark.parametrize("name", ["data.yaml", "instances.json", "list.csv"])
def test_a_fifo_training_source_is_exit_3_naming_it(project: Path, tmp_path: Path, name: str) -> None:
    source = tmp_path / "src" / name
    source.parent.mkdir()
    os.mkfifo(source)
    assert_one_line_error(_build(project, source, tmp_path / "out"), 3, str(source))


def test_a_fifo_manifest_is_exit_3_naming_it(project: Path, tmp_path: Path) -> None:
    repset = _deep_copy_of_set(project, tmp_path)
    (repset / "manifest.json").unlink()
    os.mkfifo(repset / "manifest.json")
    assert_one_line_error(run("report", "--repset", str(repset), "--out", str(tmp_path / "r.html"), timeout=120), 3,
                          str(repset / "manifest.json"), "FIFO")


@pytest.mark.parametrize("command", ["build", "check", "confirm", "doctor"])
def test_every_command_reading_coco_takes_allow_outside_root(command: str) -> None:
    assert "--allow-outside-root" in run(command, "--help", timeout=120).stdout
