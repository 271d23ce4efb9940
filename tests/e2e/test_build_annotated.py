"""``repcurate build`` on detection datasets from the command line: a YOLO data.yaml and a COCO JSON of the
same real images (digits pasted on photo crops), the manifest's object report and skipped annotation files,
``--emit yolo`` read back as an Ultralytics dataset, the candidate pool per object class, and the one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from repcurate.data.coco import read_coco
from repcurate.data.yolo import read_yolo
from repcurate.select.object_pool import choose_object_pool, image_classes
from repcurate.select.pool import PoolRule
from tests.cli_asserts import assert_one_line_error
from tests.e2e.test_cli_options import TINY_MODEL
from tests.unit.data.annotated_testdata import NAMES, compose, write_coco, write_segmentation, write_yolo


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("detection")
    rng = np.random.default_rng(3)
    objects = [[(int(rng.choice(3, p=[0.75, 0.2, 0.05])), int(rng.choice([8, 14, 20, 40])))
                for _ in range(int(rng.integers(1, 4)))] for _ in range(50)] + [[] for _ in range(8)]
    images = compose(objects, seed=3)
    write_yolo(work / "ds", images)
    label = work / "ds" / "labels" / "train" / "img000.txt"
    label.write_text(label.read_text() + "7 0.5 0.5 0.1 0.1\n")  # a class beyond names: the image is skipped
    write_coco(work / "ds" / "annotations" / "instances_train.json", work / "ds" / "images" / "train", images,
               write_images=False, relative_to=work / "ds")
    (work / "tiny.py").write_text(TINY_MODEL)
    return work


def _build(cli, project: Path, source: str, out: str, *extra: str):
    model = project / "tiny.py"
    return cli("build", "--train-dir", str(project / source), "--out", str(project / out), "--size", "16",
               "--no-cache", "--model", f"{model}:make_model", "--preprocess", f"{model}:preprocess", "-q", *extra)


def test_build_on_a_yolo_yaml_balances_objects_and_emits_a_yolo_view(cli, project: Path) -> None:
    result = _build(cli, project, "ds/data.yaml", "yolo_set", "--emit", "yolo", "--background-share", "0.1")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    out = project / "yolo_set"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layout"] == "yolo" and len(manifest["samples"]) == 16
    assert [(s["path"], s["reason"]) for s in manifest["skipped"]] == [("labels/train/img000.txt", "label_out_of_range")]
    objects = manifest["objects"]
    assert objects["names"] == list(NAMES) and objects["split"] == "train"
    by_name = {c["name"]: c for c in objects["classes"]}
    assert all(c["images_selected"] > 0 for c in by_name.values())
    rare = by_name["two"]
    assert rare["instances_selected"] == rare["instances_available"] or rare["images_selected"] >= 3
    assert objects["background"]["selected"] == 2  # 10 % of 16, rounded
    # The emitted view: Ultralytics' data.yaml keys, an absolute path, train/val naming the curated images.
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["path"] == out.resolve().as_posix() and data["train"] == data["val"] == "images.txt"
    assert data["names"] == dict(enumerate(NAMES))
    listed = (out / "images.txt").read_text().splitlines()
    assert listed == [(project / "ds" / s["path"]).resolve().as_posix() for s in manifest["samples"]]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in listed)
    # Read back with Ultralytics' rules (labels found through /images/ → /labels/): the curated images, labelled.
    view = read_yolo(out / "data.yaml", split="val")
    assert [im.path.as_posix() for im in view.images] == sorted(listed)
    assert sum(len(im.boxes) for im in view.images) == sum(c["instances_selected"] for c in objects["classes"])


def test_build_on_the_coco_json_of_the_same_data_selects_the_same_set(cli, project: Path) -> None:
    result = _build(cli, project, "ds/annotations/instances_train.json", "coco_set", "--images-dir", str(project / "ds"),
                    "--background-share", "0.1")
    assert result.returncode == 0, result.stderr
    coco = json.loads((project / "coco_set" / "manifest.json").read_text())
    yolo = json.loads((project / "yolo_set" / "manifest.json").read_text())
    assert coco["layout"] == "coco" and coco["skipped"] == []  # the COCO copy has no out-of-range label
    assert coco["objects"]["names"] == yolo["objects"]["names"] and len(coco["samples"]) == 16
    # Same data, except img000 that the YOLO copy dropped: the supply differs by exactly img000's objects.
    first = read_coco(project / "ds" / "annotations" / "instances_train.json", images_dir=project / "ds").images[0]
    assert first.path.name == "img000.png"
    for c_coco, c_yolo in zip(coco["objects"]["classes"], yolo["objects"]["classes"]):
        extra = sum(1 for b in first.boxes if b.cls == c_coco["id"])
        assert c_coco["instances_available"] == c_yolo["instances_available"] + extra


def test_a_segmentation_folder_is_pooled_per_mask_class(cli, project: Path, tmp_path) -> None:
    rng = np.random.default_rng(5)
    objects = [[(int(rng.choice(3, p=[0.7, 0.25, 0.05])), 14)] for _ in range(30)] + [[(2, 20)]]
    write_segmentation(tmp_path / "seg", compose(objects, seed=5), split="train")
    shutil.copy(project / "tiny.py", tmp_path / "tiny.py")
    result = _build(cli, tmp_path, "seg", "out", "--pool", "2", "--size", "4")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    section = manifest["pool"]
    assert manifest["layout"] == "segmentation" and section["files"] == 31 and section["pooled"] < 31
    # Mask values 1..3 are the objects' classes (0: the unlabelled rest); 20 / 8 / 3 images hold them, 2 of each drawn.
    assert {c["label"]: (c["files"], c["pool"]) for c in section["classes"]} == {
        "class_1": (20, 2), "class_2": (8, 2), "class_3": (3, 2)}
    assert manifest["counts"]["usable"] == section["pooled"] and len(manifest["samples"]) == 4


def test_a_yaml_that_is_not_a_dataset_is_one_error_line_exit_3(cli, project: Path) -> None:
    bad = project / "train_config.yaml"
    bad.write_text("epochs: 100\nlr0: 0.01\n")
    result = _build(cli, project, bad.name, "never")
    assert_one_line_error(result, 3, str(bad), "not a YOLO dataset YAML", "fix:")
    assert not (project / "never").exists()


def test_a_missing_split_and_a_bad_background_share_are_refused(cli, project: Path) -> None:
    assert_one_line_error(_build(cli, project, "ds/data.yaml", "never", "--split", "test"), 3, "no 'test' split")
    assert_one_line_error(_build(cli, project, "ds/data.yaml", "never", "--background-share", "1.5"), 2,
                          "--background-share")


def test_a_pool_per_object_class_embeds_fewer_images_and_never_decodes_the_others(cli, project: Path, tmp_path) -> None:
    shutil.copytree(project / "ds", tmp_path / "ds")
    shutil.copy(project / "tiny.py", tmp_path / "tiny.py")
    images = sorted(read_yolo(tmp_path / "ds" / "data.yaml").images, key=lambda im: im.path.as_posix())
    pool = choose_object_pool(images, NAMES, PoolRule("fixed", 3), size=6, balance="uniform", seed=0)
    pooled = {images[i].path for i in pool.rows}
    inside = next(im.path for im in images if im.path in pooled and 0 in image_classes(im))
    outside = next(im.path for im in images if im.path not in pooled and 0 in image_classes(im))
    for path in (inside, outside):  # keep the PNG header (the labels' image size), cut the pixels: decoding fails
        path.write_bytes(path.read_bytes()[:60])
    result = _build(cli, tmp_path, "ds/data.yaml", "out", "--pool", "3", "--size", "6")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    section = manifest["pool"]
    assert section["value"] == 3 and section["files"] == len(images) == 57 and section["pooled"] == len(pooled) < 57
    by_label = {c["label"]: (c["files"], c["pool"]) for c in section["classes"]}
    assert set(by_label) == {None, *NAMES} and all(p >= min(f, 3) for f, p in by_label.values())
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    rel = {path: path.relative_to(tmp_path / "ds").as_posix() for path in (inside, outside)}
    assert skipped.get(rel[inside]) in {"truncated", "corrupt"}, skipped
    assert rel[outside] not in skipped  # outside the pool: never decoded, so not known to be bad
    assert manifest["counts"]["usable"] == len(pooled) - 1 and manifest["counts"]["candidates"] == 58
    assert len(manifest["samples"]) == 6 and {s["path"] for s in manifest["samples"]} <= {
        p.relative_to(tmp_path / "ds").as_posix() for p in pooled}
    assert all(c["images_selected"] > 0 for c in manifest["objects"]["classes"])  # a valid, object-balanced set
    assert manifest["coverage"]["measured_against"].startswith(f"the candidate pool: {len(pooled) - 1} usable of "
                                                               f"{len(pooled)} pooled of 57 image files")
    assert f"candidate pool: {len(pooled)} of 57 image files embedded (seeded random per class or object class" \
        in result.stdout


def test_background_images_have_their_own_coverage_row_and_the_labelled_images_their_own_figures(cli, project: Path) -> None:
    result = _build(cli, project, "ds/data.yaml", "bg_set", "--background-share", "0.25", "--format", "json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    manifest = json.loads((project / "bg_set" / "manifest.json").read_text())
    background = [c for c in manifest["classes"] if c["label"] is None]
    assert [c.get("name") for c in background] == ["(background)"] and background[0]["selected"] == 4  # 25 % of 16
    assert all("name" not in c for c in manifest["classes"] if c["label"] is not None)
    coverage = manifest["coverage"]
    curated, random = coverage["curated"], coverage["random"]
    assert "(background)" in curated["per_class"] and "null" not in curated["per_class"]
    # 58 images, one skipped (a label beyond names), 8 without objects: the labelled figures cover the other 49
    assert curated["labelled"]["images"] == 49
    assert curated["labelled"]["max"] <= curated["max"] and set(random["labelled"]) == {"mean", "max"}
    summary = json.loads(result.stdout)["coverage"]
    assert summary["labelled_curated_mean"] == curated["labelled"]["mean"]
    assert summary["labelled_random_mean"] == random["labelled"]["mean"]["mean"]
    worse = curated["mean"] > random["mean"]["mean"]
    assert (summary["note"] is not None) == worse
    if worse:
        assert "quotas" in summary["note"] and "25% background" in summary["note"]
    html = project / "bg_report.html"
    shown = cli("report", "--repset", str(project / "bg_set"), "--out", str(html))
    assert shown.returncode == 0, shown.stderr
    text = html.read_text()
    assert "<td>(background)</td>" in text and "<td>null</td>" not in text and "labelled images only" in text
    text_summary = _build(cli, project, "ds/data.yaml", "bg_set", "--background-share", "0.25", "--overwrite")
    assert "coverage of the labelled images (background excluded)" in text_summary.stdout
    assert "(background)" in text_summary.stdout and "(unlabelled)" not in text_summary.stdout


def test_the_summary_and_the_report_speak_of_object_classes_and_draw_the_boxes(cli, project: Path) -> None:
    import base64
    import html as html_lib
    import io
    import re

    from PIL import Image

    from repcurate.render.figures import class_colours

    result = _build(cli, project, "ds/data.yaml", "objects_set")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((project / "objects_set" / "manifest.json").read_text())
    objects = manifest["objects"]
    # the samples carry their boxes in pixels of the original image, as the labels give them
    truth = {im.path.resolve(): im for im in read_yolo(project / "ds" / "data.yaml").images}
    for sample in manifest["samples"]:
        image = truth[(project / "ds" / sample["path"]).resolve()]
        assert sample["image_size"] == [image.width, image.height]
        assert sample["boxes"] == [[b.cls, round(b.x0, 2), round(b.y0, 2), round(b.x1, 2), round(b.y1, 2)] for b in image.boxes]
    # the terminal summary: one row per object class with its instances and images, then the strata
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("object class"))
    for line, c in zip(lines[head + 1:], objects["classes"]):
        assert line.split()[:5] == [c["name"], str(c["instances_available"]), str(c["instances_selected"]),
                                    str(c["images_available"]), str(c["images_selected"])]
    assert lines[head + 1 + len(NAMES)].split()[:3] == ["(background)", "–", "–"]
    assert any(line.startswith("selection strata") for line in lines) and any(line.startswith("stratum") for line in lines)
    # the report: the object-class table first, the strata as a second, labelled table
    page = project / "objects_report.html"
    assert cli("report", "--repset", str(project / "objects_set"), "--out", str(page)).returncode == 0
    text = page.read_text()
    table = text[text.index("<h3>Object classes</h3>"):text.index("<h3>Selection strata</h3>")]
    for c in objects["classes"]:
        row = re.search(rf"</span> {c['name']}</td>((?:<td class=\"num\">\d+</td>\s*)+)", table)
        assert row is not None, c["name"]
        assert re.findall(r"\d+", row.group(1)) == [str(c[k]) for k in ("instances_available", "instances_selected",
                                                                          "images_available", "images_selected", "even_share")]
    assert "stratum (object class:size)" in text and "Selected images per stratum" in text
    # a thumbnail of an image with objects shows them outlined in their class's colour
    colours = [tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in class_colours(len(NAMES))]
    sample = next(s for s in manifest["samples"] if s["boxes"])
    uri = re.search(rf'<img class="thumb" src="([^"]+)" alt="{re.escape(html_lib.escape(sample["path"]))}"', text).group(1)
    thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")).astype(int)
    cls, x0, y0, x1, _y1 = sample["boxes"][0]
    scale = thumb.shape[1] / sample["image_size"][0]
    top = thumb[round(y0 * scale), round(x0 * scale):round(x1 * scale)]  # the box's top edge, one pixel high
    near = np.abs(top - np.array(colours[cls])).sum(axis=1) < 80  # JPEG (full chroma): close to the class colour
    assert top.shape[0] >= 4 and near.mean() >= 0.8, (top.tolist(), colours[cls])
