"""Small real detection datasets for the reader and build tests: scikit-learn digits pasted onto crops of
scikit-image photos, written as YOLO (data.yaml + labels/*.txt) and COCO (instances JSON) from one truth."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_digits

NAMES = ("zero", "one", "two")
WIDTH, HEIGHT = 64, 48


@dataclass(frozen=True)
class TruthImage:
    name: str
    boxes: tuple[tuple[int, int, int, int, int], ...]  # (class, x0, y0, x1, y1) in pixels


def compose(objects_per_image: list[list[tuple[int, int]]], *, seed: int = 0) -> list[tuple[np.ndarray, TruthImage]]:
    """One RGB image per entry; each object ``(class, side)`` is a digit of that class, ``side`` pixels square,
    pasted where it does not overlap the others (objects that do not fit are dropped)."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    by_class = {c: np.flatnonzero(digits.target == c) for c in range(len(NAMES))}
    result = []
    for index, objects in enumerate(objects_per_image):
        photo = photos[index % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - HEIGHT), rng.integers(0, photo.shape[1] - WIDTH)
        canvas = photo[y:y + HEIGHT, x:x + WIDTH].copy()
        taken = np.zeros((HEIGHT, WIDTH), dtype=bool)
        boxes = []
        for cls, side in objects:
            for _try in range(30):
                x0, y0 = int(rng.integers(0, WIDTH - side + 1)), int(rng.integers(0, HEIGHT - side + 1))
                if not taken[y0:y0 + side, x0:x0 + side].any():
                    break
            else:
                continue
            taken[y0:y0 + side, x0:x0 + side] = True
            pixels = digits.images[by_class[cls][index % len(by_class[cls])]]
            glyph = np.asarray(Image.fromarray((pixels * 15).astype(np.uint8)).resize((side, side)))
            canvas[y0:y0 + side, x0:x0 + side] = np.stack([glyph] * 3, axis=-1)
            boxes.append((cls, x0, y0, x0 + side, y0 + side))
        result.append((canvas, TruthImage(f"img{index:03d}.png", tuple(boxes))))
    return result


def write_yolo(root: Path, images: list[tuple[np.ndarray, TruthImage]], *, split: str = "train",
               names_as_dict: bool = False) -> Path:
    """``root/images/<split>/*.png`` + ``root/labels/<split>/*.txt`` + ``root/data.yaml``; returns the YAML."""
    image_dir, label_dir = root / "images" / split, root / "labels" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for pixels, truth in images:
        Image.fromarray(pixels).save(image_dir / truth.name)
        if truth.boxes:
            lines = [f"{c} {(x0 + x1) / 2 / WIDTH:.6f} {(y0 + y1) / 2 / HEIGHT:.6f} {(x1 - x0) / WIDTH:.6f} "
                     f"{(y1 - y0) / HEIGHT:.6f}" for c, x0, y0, x1, y1 in truth.boxes]
            (label_dir / truth.name).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(NAMES)) if names_as_dict else f"[{', '.join(NAMES)}]"
    yaml_path = root / "data.yaml"
    sep = "\n" if names_as_dict else " "
    yaml_path.write_text(f"path: .\ntrain: images/{split}\nval: images/{split}\nnames:{sep}{names}\n")
    return yaml_path


def write_coco(json_path: Path, image_dir: Path, images: list[tuple[np.ndarray, TruthImage]], *,
               write_images: bool = True, category_ids: tuple[int, ...] = (7, 3, 11),
               relative_to: Path | None = None) -> Path:
    """A COCO instances JSON naming ``image_dir``'s images relative to ``relative_to`` (default: the JSON's
    folder); categories listed with gapped ids, in NAMES order."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    entries, annotations = [], []
    for image_id, (pixels, truth) in enumerate(images, start=1):
        if write_images:
            Image.fromarray(pixels).save(image_dir / truth.name)
        rel = (image_dir / truth.name).relative_to(relative_to or json_path.parent).as_posix()
        entries.append({"id": image_id, "file_name": rel, "width": WIDTH, "height": HEIGHT})
        for c, x0, y0, x1, y1 in truth.boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[c],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    data = {"images": entries, "annotations": annotations,
            "categories": [{"id": i, "name": n} for i, n in zip(category_ids, NAMES)]}
    json_path.write_text(json.dumps(data))
    return json_path


def write_yolo_splits(root: Path, splits: dict[str, list[tuple[np.ndarray, TruthImage]]]) -> Path:
    """One YOLO dataset with several splits (``images/<split>`` + ``labels/<split>``); returns its data.yaml."""
    for split, images in splits.items():
        yaml_path = write_yolo(root, images, split=split)
    entries = "".join(f"{split}: images/{split}\n" for split in splits)
    yaml_path.write_text(f"path: .\n{entries}names: [{', '.join(NAMES)}]\n")
    return yaml_path


def write_segmentation(root: Path, images: list[tuple[np.ndarray, TruthImage]], *, split: str = "val") -> Path:
    """``root/images/<split>/*.png`` + ``root/masks/<split>/*.png``: each object's box painted with class id + 1
    (0: background); returns ``root``."""
    image_dir, mask_dir = root / "images" / split, root / "masks" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for pixels, truth in images:
        Image.fromarray(pixels).save(image_dir / truth.name)
        mask = np.zeros(pixels.shape[:2], dtype=np.uint8)
        for c, x0, y0, x1, y1 in truth.boxes:
            mask[y0:y1, x0:x1] = c + 1
        Image.fromarray(mask, mode="L").save(mask_dir / truth.name)
    return root
