"""The segmentation-folder reader on a real photo crop with palette / grey mask PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.data.annotated import is_annotated_source, read_annotated
from repcurate.data.segmentation_folder import read_segmentation_folder


def _write(root: Path, name: str, photo: np.ndarray, mask: np.ndarray | None, *, mode: str = "P") -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo[: mask.shape[0] if mask is not None else 40, :60]).save(root / "images" / f"{name}.jpg")
    if mask is not None:
        img = Image.fromarray(mask.astype(np.uint8), mode="L")
        (img.convert("P") if mode == "P" else img.convert(mode)).save(root / "masks" / f"{name}.png")


def test_each_class_in_a_mask_is_one_object_bounding_its_pixels(tmp_path: Path, chelsea: np.ndarray) -> None:
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[5:15, 10:30] = 1
    mask[20:40, 0:6] = 2
    mask[0:2, :] = 255  # VOC's "ignore" border
    _write(tmp_path, "a", chelsea, mask)
    _write(tmp_path, "b", chelsea, None)  # no mask: a background image
    (tmp_path / "classes.txt").write_text("background\ncat\ndog\n")
    assert is_annotated_source(tmp_path)
    result = read_annotated(tmp_path)
    assert result.names == ("background", "cat", "dog") and result.skipped == ()
    first, second = result.images
    assert [(b.cls, b.x0, b.y0, b.x1, b.y1) for b in first.boxes] == [(1, 10, 5, 30, 15), (2, 0, 20, 6, 40)]
    assert first.mask == tmp_path / "masks" / "a.png" and second.is_background


def test_bad_masks_are_skipped_with_reasons(tmp_path: Path, chelsea: np.ndarray) -> None:
    mask = np.ones((40, 60), dtype=np.uint8)
    _write(tmp_path, "rgb", chelsea, mask, mode="RGB")
    _write(tmp_path, "small", chelsea, mask)
    Image.fromarray(mask[:20]).save(tmp_path / "masks" / "small.png")
    big = mask.copy()
    big[0, 0] = 7
    _write(tmp_path, "range", chelsea, big)
    Image.fromarray(mask).save(tmp_path / "masks" / "orphan.png")
    _write(tmp_path, "good", chelsea, mask)
    (tmp_path / "classes.txt").write_text("background\nthing\n")
    result = read_segmentation_folder(tmp_path)
    assert [im.path.name for im in result.images] == ["good.jpg"]
    assert sorted((s.path.name, s.reason) for s in result.skipped) == [
        ("orphan.png", "missing_image"), ("range.png", "label_out_of_range"), ("rgb.png", "unparseable_label"),
        ("small.png", "unparseable_label")]


def test_names_default_to_class_ids_and_a_split_subfolder_is_used(tmp_path: Path, chelsea: np.ndarray) -> None:
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[:10, :10] = 3
    _write(tmp_path / "x", "a", chelsea, mask)
    for kind in ("images", "masks"):
        (tmp_path / kind).mkdir()
        (tmp_path / "x" / kind).rename(tmp_path / kind / "val")
    result = read_segmentation_folder(tmp_path, split="val")
    assert result.names == ("class_0", "class_1", "class_2", "class_3") and result.split == "val"
    assert [b.cls for b in result.images[0].boxes] == [3]


def test_a_folder_without_images_and_masks_is_not_annotated(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    assert not is_annotated_source(tmp_path)
    with pytest.raises(Exception, match="not a segmentation dataset folder"):
        read_segmentation_folder(tmp_path)
