"""What a dataset's files say may not hang, exhaust or steer the readers: real FIFOs and /dev/zero symlinks as
labels, images and lists; a label symlinked to a file of secrets; billion-laughs and badly typed data.yaml
``names``; documents nested 100,000 levels deep; COCO ``file_name`` paths leaving the image folder; YOLO pose
labels; a set sample swapped for a huge file."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from repcurate.data.coco import images_outside_root, read_coco
from repcurate.data.images import DecodeError
from repcurate.data.set_files import read_verified
from repcurate.data.sources import scan
from repcurate.data.yolo import read_yolo
from repcurate.errors import InputError
from tests.unit.data.annotated_testdata import HEIGHT, WIDTH, compose, write_coco, write_yolo
from tests.unit.io.test_safe_read import BILLION_LAUGHS, DEEP, deadline

SECRET = "root:x:0:0:SECRET-TOKEN-1234:/root:/bin/bash\n"


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    write_yolo(tmp_path / "ds", compose([[(0, 12)], [(1, 14)], [(2, 10)], [(0, 16)], [(1, 8)]], seed=5))
    return tmp_path / "ds"


def _labels(ds: Path) -> list[Path]:
    return sorted((ds / "labels" / "train").glob("*.txt"))


def _skips(result) -> dict[str, tuple[str, str]]:
    return {Path(s.path).name: (s.reason, s.detail) for s in result.skipped}


def test_fifo_and_dev_zero_labels_are_skipped_and_the_rest_is_read(dataset: Path) -> None:
    fifo, zero, _ok, *_ = _labels(dataset)
    fifo.unlink()
    os.mkfifo(fifo)  # reading it blocked build and check forever
    zero.unlink()
    os.symlink("/dev/zero", zero)  # reading it reached 23.9 GB before the OOM killer
    with deadline(30):
        result = read_yolo(dataset / "data.yaml")
    skips = _skips(result)
    assert skips[fifo.name][0] == "not_a_regular_file" and "FIFO" in skips[fifo.name][1]
    assert skips[zero.name][0] == "not_a_regular_file" and "character device" in skips[zero.name][1]
    assert len(result.images) == 3


def test_fifo_and_device_images_are_skipped_when_scanned(dataset: Path) -> None:
    image_dir = dataset / "images" / "train"
    os.mkfifo(image_dir / "pipe.png")
    os.symlink("/dev/zero", image_dir / "zero.png")
    with deadline(60):
        result = scan(dataset / "data.yaml")
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["pipe.png"] == reasons["zero.png"] == "not_a_regular_file"
    assert len(result.records) == 5


def test_a_label_linked_to_a_secrets_file_never_copies_its_content(dataset: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "passwd"
    secrets.write_text(SECRET)
    label = _labels(dataset)[0]
    label.unlink()
    os.symlink(secrets, label)
    result = read_yolo(dataset / "data.yaml")
    reason, detail = _skips(result)[label.name]
    assert reason == "unparseable_label" and detail.startswith("line 1: value 1 is not a number")
    assert "SECRET" not in detail and "root" not in detail
    if Path("/etc/passwd").is_file():  # the file of the original probe
        label.unlink()
        os.symlink("/etc/passwd", label)
        reason, detail = _skips(read_yolo(dataset / "data.yaml"))[label.name]
        assert detail == "line 1: value 1 is not a number"


def test_a_yaml_path_outside_its_folder_is_kept_and_logged(dataset: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "config" / "data.yaml"  # Ultralytics' meaning: 'path' may name any folder
    elsewhere.parent.mkdir()
    elsewhere.write_text("path: ../ds\ntrain: images/train\nnames: [zero, one, two]\n")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("repcurate.data.yolo")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        result = read_yolo(elsewhere)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(result.images) == 5
    assert any(str(dataset) in r.getMessage() and "outside the YAML's folder" in r.getMessage() for r in records)


def test_a_huge_label_is_too_large(dataset: Path) -> None:
    label = _labels(dataset)[0]
    with label.open("wb") as handle:
        handle.truncate(2 << 20)  # over the 1 MiB label cap
    assert _skips(read_yolo(dataset / "data.yaml"))[label.name][0] == "too_large"


def test_a_billion_laughs_data_yaml_is_one_input_error(dataset: Path) -> None:
    (dataset / "data.yaml").write_text(BILLION_LAUGHS)
    with deadline(10), pytest.raises(InputError) as refused:
        read_yolo(dataset / "data.yaml")
    text = str(refused.value)
    assert text.startswith(str(dataset / "data.yaml")) and "alias" in text and "\n" not in text


@pytest.mark.parametrize("names", ["[[1, 2], {a: b}, null, 3.5]", "[cat, null]", "{0: [x]}", "[" + "x" * 300 + "]",
                                   "[" + ", ".join(f"c{i}" for i in range(10_001)) + "]"])
def test_names_that_are_not_a_bounded_list_of_strings_are_refused(dataset: Path, names: str) -> None:
    (dataset / "data.yaml").write_text(f"path: .\ntrain: images/train\nnames: {names}\n")
    with pytest.raises(InputError) as refused:
        read_yolo(dataset / "data.yaml")
    assert str(refused.value).startswith(str(dataset / "data.yaml")) and "names" in str(refused.value)


@pytest.mark.parametrize("kind", ["yaml", "coco", "jsonl"])
def test_a_source_nested_100k_levels_deep_is_one_input_error_naming_it(tmp_path: Path, kind: str) -> None:
    if kind == "yaml":
        path = tmp_path / "data.yaml"
        path.write_text("names: " + "[" * DEEP + "]" * DEEP + "\ntrain: images\n")
    elif kind == "coco":
        path = tmp_path / "instances.json"
        path.write_text('{"images": [], "categories": ' + "[" * DEEP + "]" * DEEP + "}")
    else:
        path = tmp_path / "list.jsonl"
        path.write_text('{"path": "a.png", "label": ' + "[" * DEEP + "]" * DEEP + "}\n")
    with deadline(30), pytest.raises(InputError) as refused:
        scan(path)
    assert str(refused.value).startswith(str(path)) and "\n" not in str(refused.value)


def test_coco_file_names_leaving_the_image_folder_are_skipped_unless_allowed(tmp_path: Path) -> None:
    images = compose([[(0, 12)], [(1, 14)], [(2, 10)]], seed=6)
    json_path = write_coco(tmp_path / "ds" / "instances.json", tmp_path / "ds" / "images", images)
    outside = tmp_path / "outside"
    write_coco(tmp_path / "elsewhere.json", outside, images[:1])  # writes outside/img000.png
    data = json.loads(json_path.read_text())
    data["images"][0]["file_name"] = "../outside/img000.png"
    data["images"][1]["file_name"] = str(outside / "img000.png")  # absolute
    json_path.write_text(json.dumps(data))
    result = read_coco(json_path)
    assert [im.path.name for im in result.images] == ["img002.png"]
    skipped = [(s.reason, s.detail.split(":")[0]) for s in result.skipped]
    assert skipped == [("outside_image_root", "images[0]"), ("outside_image_root", "images[1]")]
    allowed = read_coco(json_path, allow_outside_root=True)
    assert len(allowed.images) == 2 and allowed.skipped == ()  # both escapes name the same outside file
    with images_outside_root():
        assert len(read_coco(json_path).images) == 2


def test_coco_details_name_positions_never_values(tmp_path: Path) -> None:
    images = compose([[(0, 12)], [(1, 14)]], seed=7)
    json_path = write_coco(tmp_path / "instances.json", tmp_path / "images", images)
    data = json.loads(json_path.read_text())
    data["annotations"][0]["bbox"] = ["SECRET", 1, 2, 3]
    data["annotations"][1]["category_id"] = "SECRET"
    data["images"].append({"id": [1], "file_name": "SECRET.png"})
    json_path.write_text(json.dumps(data))
    result = read_coco(json_path)
    details = [s.detail for s in result.skipped]
    assert len(details) == 3 and not any("SECRET" in d for d in details), details
    assert {d.split(":")[0] for d in details} == {"annotations[0]", "annotations[1]", "images[2] has no file_name string or no integer id"}


@pytest.fixture()
def pose(tmp_path: Path) -> Path:
    ds = tmp_path / "pose"
    write_yolo(ds, compose([[(0, 16)], [(1, 20)]], seed=8))
    for label in sorted((ds / "labels" / "train").glob("*.txt")):  # Ultralytics' pose lines: box + 3 keypoints x y v
        label.write_text("".join(line + " 0.5 0.5 2 0.52 0.5 2 0.5 0.52 1\n" for line in label.read_text().split("\n") if line))
    return ds


def test_pose_labels_are_read_as_their_box_with_kpt_shape(pose: Path) -> None:
    plain = read_yolo(pose / "data.yaml")
    assert len(plain.images) == 0 and {s.reason for s in plain.skipped} == {"unsupported_label_format"}
    (pose / "data.yaml").write_text((pose / "data.yaml").read_text() + "kpt_shape: [3, 3]\n")
    result = read_yolo(pose / "data.yaml")
    assert result.skipped == () and len(result.images) == 2
    box = result.images[0].boxes[0]
    assert 0 <= box.x0 < box.x1 <= WIDTH and 0 <= box.y0 < box.y1 <= HEIGHT
    assert (box.x1 - box.x0) in (16.0, 20.0)
    (pose / "data.yaml").write_text((pose / "data.yaml").read_text().replace("[3, 3]", "[4, 3]"))
    assert {s.reason for s in read_yolo(pose / "data.yaml").skipped} == {"unparseable_label"}
    (pose / "data.yaml").write_text((pose / "data.yaml").read_text().replace("[4, 3]", "[4, 5]"))
    with pytest.raises(InputError, match="kpt_shape"):
        read_yolo(pose / "data.yaml")


def test_a_sample_swapped_for_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "a.png"
    with huge.open("wb") as handle:
        handle.truncate(3 << 30)  # 3 GiB, sparse: read whole it would take 3 GiB of memory
    with deadline(10), pytest.raises(DecodeError) as refused:
        read_verified(tmp_path, "a.png", "0" * 32, size_bytes=1234)
    assert refused.value.reason == "content_changed" and "1234 bytes recorded" in refused.value.detail
    with deadline(10), pytest.raises(DecodeError) as capped:  # a set without recorded sizes: the image cap
        read_verified(tmp_path, "a.png", "0" * 32)
    assert capped.value.reason == "too_large"
