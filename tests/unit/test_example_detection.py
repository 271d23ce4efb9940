"""The composite detection dataset: deterministic bytes, YOLO labels = COCO json = masks, long tail / balance."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from repcurate import example_detection
from repcurate.data.annotations import Box
from repcurate.errors import InputError, UsageError
from repcurate.example_detection import CLASSES, class_counts, class_shares, compose_split, write_detection_dataset

pytestmark = pytest.mark.skipif(not (example_detection.FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                                reason="needs Debian's dataset-fashion-mnist")
TRAIN, VAL = 14, 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("composites") / "data"
    write_detection_dataset(out, train_images=TRAIN, val_images=VAL, seed=3)
    return out


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_detection_dataset(again, train_images=TRAIN, val_images=VAL, seed=3)
    first, second = _digests(dataset), _digests(again)
    assert first.keys() == second.keys()
    assert len(first) == 3 * (TRAIN + VAL) + 4  # image, label, mask per image; data.yaml, 2 COCO jsons, the record
    differing = {name for name in first if first[name] != second[name]}
    assert differing == {"data.yaml"}  # it names its own folder, and nothing else differs
    assert (dataset / "data.yaml").read_text().replace(str(dataset), str(again)) == (again / "data.yaml").read_text()
    # regenerated in place (overwrite): byte for byte the same, data.yaml included
    write_detection_dataset(again, train_images=TRAIN, val_images=VAL, seed=3, overwrite=True)
    assert _digests(again) == second
    other = tmp_path / "other"
    write_detection_dataset(other, train_images=TRAIN, val_images=VAL, seed=4)
    assert _digests(other)["images/train/000000.jpg"] != first["images/train/000000.jpg"]


def test_layout_is_a_yolo_dataset(dataset: Path) -> None:
    config = yaml.safe_load((dataset / "data.yaml").read_text())
    assert config == {"path": str(dataset), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))}
    for split, count in (("train", TRAIN), ("val", VAL)):
        images = sorted((dataset / "images" / split).iterdir())
        assert [p.name for p in images] == [f"{i:06d}.jpg" for i in range(count)]
        assert sorted(p.stem for p in (dataset / "labels" / split).iterdir()) == [p.stem for p in images]
        assert sorted(p.stem for p in (dataset / "masks" / split).iterdir()) == [p.stem for p in images]
        with Image.open(images[0]) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (128, 128))


def _yolo_boxes(path: Path, size: int) -> list[tuple[int, float, float, float, float]]:
    boxes = []
    for line in path.read_text().splitlines():
        cls, cx, cy, w, h = line.split()
        x, y, bw, bh = (float(v) * size for v in (cx, cy, w, h))
        boxes.append((int(cls), x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2))
    return boxes


@pytest.mark.parametrize("split", ["train", "val"])
def test_yolo_labels_coco_json_and_masks_agree(dataset: Path, split: str) -> None:
    coco = json.loads((dataset / f"instances_{split}.json").read_text())
    assert [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])] == list(CLASSES)
    assert [c["id"] for c in coco["categories"]] == list(range(1, len(CLASSES) + 1))
    by_image: dict[int, list[dict]] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    backgrounds = 0
    for entry in coco["images"]:
        stem = Path(entry["file_name"]).stem
        assert (dataset / entry["file_name"]).is_file() and entry["width"] == entry["height"] == 128
        yolo = _yolo_boxes(dataset / "labels" / split / f"{stem}.txt", 128)
        annotations = by_image.get(entry["id"], [])
        assert len(yolo) == len(annotations)
        mask = np.asarray(Image.open(dataset / "masks" / split / f"{stem}.png"))
        assert mask.shape == (128, 128) and mask.dtype == np.uint8 and int(mask.max()) <= len(CLASSES)
        backgrounds += not annotations
        if not annotations:
            assert not mask.any()
        for (cls, x0, y0, x1, y1), annotation in zip(yolo, annotations):
            bx, by, bw, bh = annotation["bbox"]
            assert annotation["category_id"] == cls + 1 and annotation["iscrowd"] == 0
            assert np.allclose([x0, y0, x1, y1], [bx, by, bx + bw, by + bh], atol=1e-3)
            assert annotation["area"] == bw * bh > 0
            inside = mask[by:by + bh, bx:bx + bw]
            assert (inside == cls + 1).any()  # the object's silhouette is in the mask, inside its box
        # every object pixel of the mask lies inside a box of its class
        for value in set(np.unique(mask).tolist()) - {0}:
            ys, xs = np.nonzero(mask == value)
            boxes = [a["bbox"] for a in annotations if a["category_id"] == value]
            covered = np.zeros(len(ys), dtype=bool)
            for bx, by, bw, bh in boxes:
                covered |= (xs >= bx) & (xs < bx + bw) & (ys >= by) & (ys < by + bh)
            assert covered.all()
    assert backgrounds == round(0.08 * len(coco["images"]))


def test_train_is_long_tailed_and_val_balanced_as_recorded(dataset: Path) -> None:
    record = json.loads((dataset / "detection_dataset.json").read_text())
    train = [record["train"]["instances"][name] for name in CLASSES]
    val = [record["val"]["instances"][name] for name in CLASSES]
    assert train == class_counts(sum(train), class_shares("train", 10.0))
    assert train == sorted(train, reverse=True) and train[0] >= 5 * train[-1]
    assert max(val) - min(val) <= 1
    for split in ("train", "val"):
        coco = json.loads((dataset / f"instances_{split}.json").read_text())
        counted = [0] * len(CLASSES)
        for annotation in coco["annotations"]:
            counted[annotation["category_id"] - 1] += 1
        assert counted == [record[split]["instances"][name] for name in CLASSES]


def test_class_counts_apportion_exactly() -> None:
    assert class_counts(10, class_shares("val", 10.0)) == [2, 2, 2, 2, 1, 1]
    shares = class_shares("train", 10.0)
    assert shares[0] / shares[-1] == pytest.approx(10.0)
    assert sum(class_counts(997, shares)) == 997


def test_objects_come_in_every_coco_size() -> None:
    sizes = {Box(cls, x0, y0, x1, y1).size for composite in compose_split("val", 40, seed=0) for cls, x0, y0, x1, y1 in composite.objects}
    assert sizes == {"small", "medium", "large"}


def test_existing_output_needs_overwrite_and_bad_arguments_are_refused(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="overwrite"):
        write_detection_dataset(dataset, train_images=2, val_images=2)
    with pytest.raises(UsageError, match="train_images"):
        write_detection_dataset(tmp_path / "x", train_images=0, val_images=2)
    assert not (tmp_path / "x").exists()


def test_missing_fashion_mnist_is_an_input_error_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(example_detection, "FASHION_DIR", tmp_path / "absent")
    example_detection.fashion_objects.cache_clear()
    try:
        with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
            write_detection_dataset(tmp_path / "out", train_images=2, val_images=2)
    finally:
        example_detection.fashion_objects.cache_clear()
    assert not any(tmp_path.iterdir())  # nothing written: no output folder, no hidden partial one
