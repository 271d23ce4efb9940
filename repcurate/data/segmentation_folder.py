"""Read a semantic-segmentation folder (images + mask PNGs of class ids) into an :class:`AnnotatedDataset`.

Accepted layouts (the folder given is ``root``):

- ``root/images/…/<name>.<image ext>`` with ``root/masks/…/<name>.png`` at the same relative path; when
  ``root/images/<split>/`` and ``root/masks/<split>/`` exist, only that split is read;
- Pascal VOC: ``root/JPEGImages/<name>.jpg`` with ``root/SegmentationClass/<name>.png``.

A mask's pixel values are class ids (a palette PNG's indices, as VOC stores them, or 8/16-bit grey); **0 is
background and 255 is "ignore"** (VOC's object borders), neither counts as an object. Class names come from
``root/classes.txt`` (one name per line, line 1 = class 0) when present, else ``class_0``, ``class_1``, ….
Every other class present in a mask counts as one object of the image whose box bounds its pixels (what the
object quotas balance). An image without a mask is a background image; a mask without an image is
``missing_image``; a colour (RGB) mask, a mask of another size than its image or an unreadable mask is
``unparseable_label``; a class id beyond ``classes.txt`` is ``label_out_of_range``.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from repcurate.data.annotation_rules import BadAnnotation, displayed_size
from repcurate.data.annotations import AnnotatedDataset, AnnotatedImage, Box, SkippedAnnotation
from repcurate.data.images import is_image_path
from repcurate.errors import InputError
from repcurate.io.safe_read import UnsafeFile, read_bytes, read_text

#: (image folder, mask folder) pairs recognised, in the order they are tried.
LAYOUTS = (("images", "masks"), ("JPEGImages", "SegmentationClass"))
BACKGROUND_ID = 0
IGNORE_ID = 255
NAMES_FILE = "classes.txt"


def segmentation_folders(root: Path) -> tuple[Path, Path] | None:
    """The (images, masks) folders of a segmentation dataset at ``root``, or None when it is not one."""
    for image_dir, mask_dir in LAYOUTS:
        if (root / image_dir).is_dir() and (root / mask_dir).is_dir():
            return root / image_dir, root / mask_dir
    return None


def _names(root: Path) -> tuple[str, ...] | None:
    path = root / NAMES_FILE
    if not path.is_file():
        return None
    try:
        names = tuple(line.strip() for line in read_text(path, "names").splitlines() if line.strip())
    except UnsafeFile as exc:
        raise InputError(f"{path}: cannot use the class names ({exc.detail}); fix: one class name per line, "
                         "UTF-8") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read the class names (not UTF-8 text); fix: one class name per line, "
                         "UTF-8") from None
    if not names:
        raise InputError(f"{path}: no class names; fix: one class name per line (line 1 = class 0)")
    return names


def mask_objects(mask_path: Path, width: int, height: int, classes: int | None) -> tuple[Box, ...]:
    """One box per class present in the mask (0 and 255 excluded), bounding that class's pixels."""
    try:
        data = read_bytes(mask_path, "mask")
    except UnsafeFile as exc:
        reason = exc.reason if exc.reason in ("not_a_regular_file", "too_large") else "unparseable_label"
        raise BadAnnotation(reason, f"cannot read the mask ({exc.detail})") from None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("P", "L", "I", "I;16", "1"):
                raise BadAnnotation("unparseable_label", f"a {img.mode} mask; fix: store class ids as a palette "
                                                         "or greyscale PNG")
            ids = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise BadAnnotation("unparseable_label", f"cannot read the mask ({exc})") from None
    if ids.shape != (height, width):
        raise BadAnnotation("unparseable_label", f"the mask is {ids.shape[1]}x{ids.shape[0]}, "
                                                 f"the image {width}x{height}")
    boxes = []
    for cls in np.unique(ids).tolist():
        if cls in (BACKGROUND_ID, IGNORE_ID):
            continue
        if classes is not None and cls >= classes:
            raise BadAnnotation("label_out_of_range", f"class id {cls} is not in 0..{classes - 1} "
                                                      f"({NAMES_FILE} names {classes} classes)")
        rows, cols = np.nonzero(ids == cls)
        boxes.append(Box(int(cls), float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)))
    return tuple(boxes)


def read_segmentation_folder(root: str | Path, split: str = "train") -> AnnotatedDataset:
    """A segmentation folder (see the module docstring): images with their masks and per-class objects."""
    root = Path(root).resolve()
    folders = segmentation_folders(root)
    if folders is None:
        raise InputError(f"{root}: not a segmentation dataset folder; fix: put images in images/ and masks in "
                         "masks/ (or VOC's JPEGImages/ and SegmentationClass/)")
    image_dir, mask_dir = folders
    if (image_dir / split).is_dir() and (mask_dir / split).is_dir():
        image_dir, mask_dir = image_dir / split, mask_dir / split
    names = _names(root)
    images_by_key = {p.relative_to(image_dir).with_suffix(""): p for p in sorted(image_dir.rglob("*"))
                     if p.is_file() and is_image_path(p)}
    masks_by_key = {p.relative_to(mask_dir).with_suffix(""): p for p in sorted(mask_dir.rglob("*.png")) if p.is_file()}
    images: list[AnnotatedImage] = []
    skipped = [SkippedAnnotation(mask, "missing_image", "a mask without an image of the same name")
               for key, mask in masks_by_key.items() if key not in images_by_key]
    most = -1
    for key, path in images_by_key.items():
        mask = masks_by_key.get(key)
        try:
            width, height = displayed_size(path)
            boxes = () if mask is None else mask_objects(mask, width, height, None if names is None else len(names))
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(mask if mask is not None and exc.reason != "missing_image" else path,
                                             exc.reason, exc.detail))
            continue
        most = max([most, *(b.cls for b in boxes)])
        images.append(AnnotatedImage(path, width, height, boxes, mask))
    if names is None:
        names = tuple(f"class_{i}" for i in range(max(most + 1, 1)))
    return AnnotatedDataset(source=root, split=split, names=names, images=tuple(sorted(images, key=lambda im: im.path)),
                            skipped=tuple(sorted(skipped, key=lambda s: s.path)))
