"""The YOLO dataset view (``build --emit yolo``) checked against Ultralytics' documented data.yaml format
(https://docs.ultralytics.com/datasets/detect/): keys, absolute ``path``, list files of absolute image paths,
``names`` as an id → name mapping; and read back by repcurate's own YOLO reader."""
from __future__ import annotations

from pathlib import Path

import yaml

from repcurate.data.yolo import read_yolo
from repcurate.io.yolo_view import DATA_YAML, IMAGE_LIST, write_yolo_view, yolo_view_files
from tests.unit.data.annotated_testdata import compose, write_yolo


def test_the_view_names_the_images_in_order_with_the_dataset_names(tmp_path: Path) -> None:
    yaml_path = write_yolo(tmp_path / "ds", compose([[(0, 12)], [], [(2, 20), (1, 10)]]))
    chosen = [tmp_path / "ds" / "images" / "train" / n for n in ("img002.png", "img000.png", "img001.png")]
    out = tmp_path / "set"
    out.mkdir()
    data_yaml = write_yolo_view(out, chosen, ["zero", "one", "two: the colon"])
    data = yaml.safe_load(data_yaml.read_text())
    assert set(data) == {"path", "train", "val", "names"}
    assert Path(data["path"]).is_absolute() and Path(data["path"]) == out.resolve()
    assert data["names"] == {0: "zero", 1: "one", 2: "two: the colon"}
    assert (out / data["train"]).read_text().splitlines() == [p.resolve().as_posix() for p in chosen]
    view = read_yolo(data_yaml, split="val")
    original = {im.path: im.boxes for im in read_yolo(yaml_path).images}
    assert {im.path: im.boxes for im in view.images} == original


def test_the_files_are_deterministic_and_a_classification_set_gets_at_least_one_name(tmp_path: Path) -> None:
    first = yolo_view_files(tmp_path, [tmp_path / "a.png"], [])
    assert first == yolo_view_files(tmp_path, [tmp_path / "a.png"], [])
    assert set(first) == {DATA_YAML, IMAGE_LIST}
    assert yaml.safe_load(first[DATA_YAML])["names"] == {0: "object"}
