"""The YOLO reader on real PNGs (digits pasted on photo crops): boxes in pixels, splits, list files, every
bad-annotation reason, and the one-line errors for a YAML that is not a dataset."""
from __future__ import annotations

from pathlib import Path

import pytest

from repcurate.data.annotated import read_annotated
from repcurate.data.yolo import label_path, read_yolo
from repcurate.errors import InputError
from tests.unit.data.annotated_testdata import HEIGHT, NAMES, WIDTH, compose, write_yolo

OBJECTS = [[(0, 16), (1, 20)], [(2, 12)], [], [(0, 30), (0, 10), (2, 16)]]


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list]:
    images = compose(OBJECTS)
    return write_yolo(tmp_path / "ds", images), images


def _boxes(image) -> list[tuple[int, ...]]:
    return [(b.cls, round(b.x0), round(b.y0), round(b.x1), round(b.y1)) for b in image.boxes]


def test_reads_every_image_with_its_boxes_in_pixels_and_keeps_background_images(dataset) -> None:
    yaml_path, truth = dataset
    result = read_yolo(yaml_path)
    assert result.names == NAMES and result.split == "train" and result.skipped == ()
    assert [im.path.name for im in result.images] == [t.name for _, t in truth]
    for image, (_pixels, expected) in zip(result.images, truth):
        assert (image.width, image.height) == (WIDTH, HEIGHT)
        assert _boxes(image) == [tuple(b) for b in expected.boxes]
        for box, want in zip(image.boxes, expected.boxes):
            assert box.x0 == pytest.approx(want[1], abs=1e-3) and box.y1 == pytest.approx(want[4], abs=1e-3)
    assert [im.is_background for im in result.images] == [False, False, True, False]


def test_names_as_a_dict_and_the_val_split_and_a_list_file(tmp_path: Path) -> None:
    images = compose(OBJECTS)
    yaml_path = write_yolo(tmp_path / "ds", images, names_as_dict=True)
    (tmp_path / "ds" / "val.txt").write_text("./images/train/img001.png\nimages/train/img003.png\n")
    yaml_path.write_text(yaml_path.read_text().replace("val: images/train", "val: val.txt"))
    val = read_annotated(yaml_path, split="val")
    assert val.names == NAMES and [im.path.name for im in val.images] == ["img001.png", "img003.png"]
    assert _boxes(val.images[0]) == [(2, *compose(OBJECTS)[1][1].boxes[0][1:])]


def test_label_path_follows_ultralytics_images_to_labels_rule() -> None:
    assert label_path(Path("/d/images/train/a.b.jpg")) == Path("/d/labels/train/a.b.txt")
    assert label_path(Path("/images/x/images/y/c.png")) == Path("/images/x/labels/y/c.txt")
    assert label_path(Path("/d/pics/c.png")) == Path("/d/pics/c.txt")


def test_a_polygon_line_counts_as_the_box_around_it(dataset) -> None:
    yaml_path, _ = dataset
    label = yaml_path.parent / "labels" / "train" / "img002.txt"
    label.write_text("1 0.25 0.25 0.75 0.25 0.5 0.75\n")
    image = next(im for im in read_yolo(yaml_path).images if im.path.name == "img002.png")
    assert _boxes(image) == [(1, 16, 12, 48, 36)]


@pytest.mark.parametrize(("line", "reason"), [
    ("3 0.5 0.5 0.1 0.1", "label_out_of_range"),
    ("-1 0.5 0.5 0.1 0.1", "label_out_of_range"),
    ("0 0.95 0.5 0.3 0.1", "box_outside_image"),
    ("0 0.5 0.5 0 0.1", "empty_box"),
    ("0 0.5 0.5 0.1", "unparseable_label"),
    ("zero 0.5 0.5 0.1 0.1", "unparseable_label"),
    ("0.5 0.5 0.5 0.1 0.1", "unparseable_label"),
    ("0 nan 0.5 0.1 0.1", "unparseable_label"),
])
def test_one_bad_line_skips_its_image_with_a_reason_and_keeps_the_others(dataset, line: str, reason: str) -> None:
    yaml_path, _ = dataset
    label = yaml_path.parent / "labels" / "train" / "img000.txt"
    label.write_text(label.read_text() + line + "\n")
    result = read_yolo(yaml_path)
    assert [im.path.name for im in result.images] == ["img001.png", "img002.png", "img003.png"]
    assert [(s.path, s.reason) for s in result.skipped] == [(label, reason)]
    assert "line 3" in result.skipped[0].detail


def test_a_listed_image_that_is_missing_or_not_an_image_is_skipped(dataset) -> None:
    yaml_path, _ = dataset
    root = yaml_path.parent
    (root / "images" / "train" / "broken.png").write_bytes(b"not a png")
    (root / "list.txt").write_text("images/train/img000.png\nimages/train/gone.png\nimages/train/broken.png\n")
    yaml_path.write_text(yaml_path.read_text().replace("train: images/train", "train: list.txt"))
    result = read_yolo(yaml_path)
    assert [im.path.name for im in result.images] == ["img000.png"]
    assert sorted((s.path.name, s.reason) for s in result.skipped) == [("broken.png", "not_an_image"),
                                                                        ("gone.png", "missing_image")]


@pytest.mark.parametrize(("text", "needle"), [
    ("just a string\n", "not a YOLO dataset YAML"),
    ("model: yolov8n.pt\nepochs: 3\n", "not a YOLO dataset YAML"),
    ("train: images/train\n", "no 'names'"),
    ("train: images/train\nnames: {0: a, 2: b}\n", "without gaps"),
    ("train: [unclosed\n", "not valid YAML"),
    ("train: !!python/object/apply:os.system ['echo pwned']\nnames: [a]\n", "not valid YAML"),
    ("train: images/nowhere\nnames: [a]\n", "does not exist"),
    ("val: images/train\nnames: [a]\n", "no 'train' split"),
])
def test_a_yaml_that_is_not_a_usable_dataset_is_one_input_error(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_yolo(path)
    message = str(caught.value)
    assert needle in message and str(path) in message and "fix:" in message and "\n" not in message
