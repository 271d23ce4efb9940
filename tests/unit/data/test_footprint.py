"""The footprint of a source: every file it reads and every folder holding its data, from its own description."""
from __future__ import annotations

from pathlib import Path

from repcurate.data.footprint import set_footprint, source_footprint
from tests.unit.data.annotated_testdata import compose, write_coco, write_yolo_splits


def test_a_yolo_yaml_covers_its_splits_labels_and_list_files(tmp_path: Path) -> None:
    yaml_path = write_yolo_splits(tmp_path / "ds", {"train": compose([[(0, 10)]]), "val": compose([[(1, 10)]])})
    extra = tmp_path / "elsewhere" / "images"
    extra.mkdir(parents=True)
    (extra / "x.png").write_bytes((tmp_path / "ds" / "images" / "val" / "img000.png").read_bytes())
    (tmp_path / "ds" / "test.txt").write_text(f"{extra / 'x.png'}\n")
    yaml_path.write_text(yaml_path.read_text() + "test: test.txt\n")
    footprint = source_footprint(yaml_path)
    ds = (tmp_path / "ds").resolve()
    assert set(footprint.files) == {yaml_path.absolute(), ds / "test.txt"}
    assert {ds / "images" / "train", ds / "labels" / "train", ds / "images" / "val", ds / "labels" / "val",
            extra.resolve(), (tmp_path / "elsewhere" / "labels").resolve()} <= set(footprint.folders)


def test_a_coco_json_covers_its_image_folder_and_a_list_its_images_folders(tmp_path: Path) -> None:
    json_path = write_coco(tmp_path / "ann" / "instances.json", tmp_path / "ann" / "pics", compose([[(0, 10)]]))
    assert source_footprint(json_path).folders == (json_path.parent.absolute(),)
    assert source_footprint(json_path, images_dir=tmp_path / "pics").folders == ((tmp_path / "pics").absolute(),)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"png")
    (tmp_path / "list.csv").write_text("path,label\na/x.png,cat\n/abs/b/y.png,dog\nmissing.png,dog\n")
    listed = source_footprint(tmp_path / "list.csv")
    assert listed.files == ((tmp_path / "list.csv").absolute(),)
    assert set(listed.folders) == {(tmp_path / "a").resolve()}  # a listed file that is not there holds nothing


def test_an_unparseable_source_is_guarded_by_its_own_path(tmp_path: Path) -> None:
    bad = tmp_path / "data.yaml"
    bad.write_text("names: [a\n")
    assert source_footprint(bad).files == (bad.absolute(),) and source_footprint(bad).folders == ()
    assert set_footprint(tmp_path / "missing").folders == ()
