"""The COCO reader on real PNGs: the same AnnotatedDataset as the YOLO reader for the same data, contiguous
class ids in category order, crowd regions, every bad-annotation reason, and the error for a non-COCO JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from repcurate.data.coco import read_coco
from repcurate.data.yolo import read_yolo
from repcurate.errors import InputError
from tests.unit.data.annotated_testdata import NAMES, compose, write_coco, write_yolo

OBJECTS = [[(0, 16), (1, 20)], [(2, 12)], [], [(0, 30), (0, 10), (2, 16)], [(1, 40)]]


def _rounded(dataset) -> list[tuple]:
    return [(im.path, im.width, im.height, tuple((b.cls, round(b.x0, 2), round(b.y0, 2), round(b.x1, 2),
                                                  round(b.y1, 2), b.crowd) for b in im.boxes)) for im in dataset.images]


def test_coco_and_yolo_give_the_same_dataset_for_the_same_data(tmp_path: Path) -> None:
    images = compose(OBJECTS)
    yaml_path = write_yolo(tmp_path / "ds", images)
    json_path = write_coco(tmp_path / "ds" / "annotations" / "instances_train.json", tmp_path / "ds" / "images" / "train",
                           images, write_images=False, relative_to=tmp_path / "ds")
    from_yolo, from_coco = read_yolo(yaml_path), read_coco(json_path, images_dir=tmp_path / "ds")
    assert from_coco.names == from_yolo.names == NAMES
    assert _rounded(from_coco) == _rounded(from_yolo)
    assert from_coco.skipped == from_yolo.skipped == ()


def test_image_paths_are_relative_to_the_json_folder_by_default(tmp_path: Path) -> None:
    images = compose(OBJECTS[:2])
    json_path = write_coco(tmp_path / "instances.json", tmp_path / "pics", images)
    result = read_coco(json_path)
    assert [im.path for im in result.images] == [tmp_path / "pics" / "img000.png", tmp_path / "pics" / "img001.png"]
    assert [[b.cls for b in im.boxes] for im in result.images] == [[0, 1], [2]]


def _edit(json_path: Path, change) -> None:
    data = json.loads(json_path.read_text())
    change(data)
    json_path.write_text(json.dumps(data))


def test_crowd_regions_are_kept_and_marked(tmp_path: Path) -> None:
    json_path = write_coco(tmp_path / "instances.json", tmp_path / "pics", compose(OBJECTS[:1]))
    _edit(json_path, lambda d: d["annotations"][0].update(iscrowd=1))
    (image,) = read_coco(json_path).images
    assert [b.crowd for b in image.boxes] == [True, False]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d["annotations"][0].update(category_id=99), "unknown_class"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "unparseable_label"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), "unparseable_label"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 0, 4]), "empty_box"),
    (lambda d: d["annotations"][0].update(bbox=[60, 2, 30, 4]), "box_outside_image"),
    (lambda d: d["images"][0].update(file_name="pics/gone.png"), "missing_image"),
])
def test_a_bad_annotation_skips_its_image_with_a_reason(tmp_path: Path, change, reason: str) -> None:
    json_path = write_coco(tmp_path / "instances.json", tmp_path / "pics", compose(OBJECTS))
    _edit(json_path, change)
    result = read_coco(json_path)
    assert len(result.images) == len(OBJECTS) - 1
    assert [s.reason for s in result.skipped] == [reason]
    assert result.skipped[0].path.parent == tmp_path / "pics"


@pytest.mark.parametrize(("text", "needle"), [
    ("[1, 2]", "not a COCO instances JSON"),
    ('{"images": []}', "not a COCO instances JSON"),
    ('{"images": [], "categories": []}', "'categories' is empty"),
    ("{not json", "not valid JSON"),
])
def test_a_json_that_is_not_coco_is_one_input_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "instances.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_coco(path)
    assert needle in str(caught.value) and str(path) in str(caught.value) and "fix:" in str(caught.value)
