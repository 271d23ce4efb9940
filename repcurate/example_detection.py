"""A real detection / segmentation dataset composed offline: Fashion-MNIST objects pasted onto photo crops.

Objects are real Fashion-MNIST images (Debian's ``dataset-fashion-mnist``; train split objects for ``train``,
the 10,000 test images for ``val``) of :data:`CLASSES`, tinted, scaled to a COCO-small, -medium or -large
size and pasted with their own silhouette (pixels brighter than :data:`SILHOUETTE_LEVEL`) onto square crops
of real photos (scikit-image's ``skimage.data`` and scikit-learn's sample photos). Each image holds 1 to
``max_objects`` objects whose boxes barely overlap (intersection ≤ 15 % of the smaller box), or none (a background image, ``background_share`` of a
split). ``train`` is long-tailed: class i gets a share ∝ ``longtail_rho``^(−i/(C−1)) of the objects
(class 0 the most, the last 1/rho of it), apportioned exactly (largest remainder); ``val`` has as many objects
of every class as the object count allows (counts differ by at most one).

:func:`write_detection_dataset` writes, under ``out``::

    data.yaml                      YOLO: path (absolute), train: images/train, val: images/val, names {0: ..}
    images/{train,val}/NNNNNN.jpg  the composites (RGB, image_size², JPEG quality 95)
    labels/{train,val}/NNNNNN.txt  YOLO labels, one ``class cx cy w h`` line per object (normalised, 6
                                   decimals); an empty file for a background image
    masks/{train,val}/NNNNNN.png   semantic masks (8-bit grey): 0 = background, k = YOLO class k − 1
    instances_{train,val}.json     COCO: images (file_name relative to ``out``), annotations (bbox
                                   [x, y, w, h] pixels, area = w·h, iscrowd 0), categories (id = class + 1)
    detection_dataset.json         the parameters and per-split counts (images, background images,
                                   instances per class and per COCO size)

Boxes are the tight pixel extent of the pasted silhouette (integers: ``x0 = first column``, ``x1 = last
column + 1``). A later object may cover a few pixels of an earlier one in the mask; its box is not changed.
Same arguments ⇒ byte-identical files (PIL's JPEG/PNG encoders are deterministic; only data.yaml's ``path``
line names the output folder).
"""
from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from repcurate.data.annotations import MEDIUM_AREA, SMALL_AREA
from repcurate.errors import InputError, UsageError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Detection classes (index = YOLO class id) and the Fashion-MNIST label each comes from.
CLASSES = ("tshirt", "trouser", "dress", "sandal", "bag", "boot")
FASHION_LABELS = (0, 1, 3, 5, 8, 9)
IMAGE_SIZE = 128
#: A pasted pixel belongs to the object's silhouette when its Fashion-MNIST intensity exceeds this.
SILHOUETTE_LEVEL = 24
#: Side (pixels) of the pasted 28×28 tile per size bucket; box areas land mostly in COCO's bucket of that name.
TILE_SIDES = {"small": (12, 32), "medium": (38, 80), "large": (104, 124)}
SIZE_SHARES = {"small": 0.4, "medium": 0.45, "large": 0.15}
#: Backgrounds: (library, name) of offline photos.
PHOTOS = (("skimage", "astronaut"), ("skimage", "chelsea"), ("skimage", "coffee"), ("skimage", "rocket"),
          ("skimage", "camera"), ("skimage", "coins"), ("skimage", "moon"), ("skimage", "brick"),
          ("skimage", "grass"), ("skimage", "gravel"), ("skimage", "hubble_deep_field"), ("skimage", "retina"),
          ("skimage", "immunohistochemistry"), ("skimage", "clock"), ("sklearn", "china.jpg"), ("sklearn", "flower.jpg"))
SPLITS = ("train", "val")
_FASHION_SPLIT = {"train": "train", "val": "t10k"}
_STREAM = {"train": 0, "val": 1}
_MAX_OVERLAP = 0.15  # intersection over the smaller box, between any two boxes of an image
_JPEG_QUALITY = 95


@dataclass(frozen=True)
class Composite:
    """One composed image: RGB pixels, its semantic mask and its objects ``(class, x0, y0, x1, y1)`` (pixels)."""

    image: np.ndarray
    mask: np.ndarray
    objects: tuple[tuple[int, int, int, int, int], ...]


@lru_cache(maxsize=2)
def fashion_objects(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (n, 28, 28) uint8 and labels (n,) of ``split`` ("train" or "t10k")."""
    paths = [FASHION_DIR / f"{split}-images-idx3-ubyte.gz", FASHION_DIR / f"{split}-labels-idx1-ubyte.gz"]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: missing; fix: apt-get install dataset-fashion-mnist (Debian's Fashion-MNIST)")
    with gzip.open(paths[0], "rb") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(paths[1], "rb") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    return images, labels


@lru_cache(maxsize=1)
def background_photos() -> tuple[np.ndarray, ...]:
    """The offline photos of :data:`PHOTOS` as RGB uint8 arrays."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    photos = []
    for library, name in PHOTOS:
        pixels = np.asarray(getattr(skimage.data, name)() if library == "skimage" else load_sample_image(name))
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        photos.append(np.ascontiguousarray(pixels[:, :, :3]).astype(np.uint8))
    return tuple(photos)


def class_counts(total: int, shares: np.ndarray) -> list[int]:
    """``total`` objects apportioned to classes by ``shares`` (largest remainder, ties to the lower class)."""
    exact = np.asarray(shares, dtype=np.float64) / np.sum(shares) * total
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    for index in sorted(range(len(counts)), key=lambda i: (-remainder[i], i))[: total - int(counts.sum())]:
        counts[index] += 1
    return [int(c) for c in counts]


def class_shares(split: str, longtail_rho: float) -> np.ndarray:
    """Objects' class shares of ``split``: long-tailed (rho^(−i/(C−1))) for train, uniform for val."""
    count = len(CLASSES)
    if split == "val":
        return np.full(count, 1.0 / count)
    weights = np.array([longtail_rho ** (-i / (count - 1)) for i in range(count)])
    return weights / weights.sum()


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    photos = background_photos()
    photo = photos[int(rng.integers(len(photos)))]
    height, width = photo.shape[:2]
    side = int(rng.integers(max(size, int(0.3 * min(height, width))), min(height, width) + 1))
    top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(crop)
    return pixels[:, ::-1] if rng.random() < 0.5 else pixels


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> bool:
    x0, y0, x1, y1 = box
    for a0, b0, a1, b1 in boxes:
        inter = max(0, min(x1, a1) - max(x0, a0)) * max(0, min(y1, b1) - max(y0, b0))
        smaller = min((x1 - x0) * (y1 - y0), (a1 - a0) * (b1 - b0))
        if inter > _MAX_OVERLAP * smaller:
            return True
    return False


def _tile(rng: np.random.Generator, pixels: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """The object scaled to side×side: grey intensity (float 0..1), silhouette (bool) and its tight box in the tile."""
    grey = np.asarray(Image.fromarray(pixels).resize((side, side), Image.Resampling.BILINEAR))
    if rng.random() < 0.5:
        grey = grey[:, ::-1]
    silhouette = grey > SILHOUETTE_LEVEL
    rows, cols = np.flatnonzero(silhouette.any(axis=1)), np.flatnonzero(silhouette.any(axis=0))
    return grey.astype(np.float32) / 255.0, silhouette, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _place(rng: np.random.Generator, classes: list[int], pools: list[np.ndarray], size: int, *,
           allow_large: bool) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, int, int, tuple[int, int, int, int]]] | None:
    """Sizes and places for all ``classes`` objects (largest first, boxes barely overlapping), or None if one
    finds no free place in 40 tries. Each entry: class, grey tile, silhouette, tint, left, top, box."""
    shares = dict(SIZE_SHARES) if allow_large else {"small": 0.5, "medium": 0.5}
    buckets = [str(rng.choice(list(shares), p=list(shares.values()))) for _ in classes]
    if buckets.count("large") > 1:  # one large object per image leaves room for the others
        first = buckets.index("large")
        buckets = [b if b != "large" or i == first else "medium" for i, b in enumerate(buckets)]
    order = sorted(range(len(classes)), key=lambda i: ("large", "medium", "small").index(buckets[i]))
    boxes: list[tuple[int, int, int, int]] = []
    placed = []
    for index in order:
        cls = classes[index]
        pixels = pools[cls][int(rng.integers(len(pools[cls])))]
        tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)
        for _ in range(40):
            low, high = TILE_SIDES[buckets[index]]
            side = min(int(rng.integers(low, high + 1)), size)
            grey, silhouette, (bx0, by0, bx1, by1) = _tile(rng, pixels, side)
            left = int(rng.integers(-bx0, size - bx1 + 1))
            top = int(rng.integers(-by0, size - by1 + 1))
            box = (left + bx0, top + by0, left + bx1, top + by1)
            if not _overlaps(box, boxes):
                boxes.append(box)
                placed.append((cls, grey, silhouette, tint, left, top, box))
                break
        else:
            return None
    return placed


def compose(rng: np.random.Generator, classes: list[int], pools: list[np.ndarray], *, size: int) -> Composite:
    """One composite of ``classes`` objects (drawn from ``pools[class]``) on a random photo crop.

    When the objects do not all fit, sizes are drawn again (up to 20 times; from the 10th on, without a
    large object); every object of ``classes`` is in the result."""
    canvas = _background(rng, size).astype(np.float32)
    mask = np.zeros((size, size), dtype=np.uint8)
    for attempt in range(20):
        placed = _place(rng, classes, pools, size, allow_large=attempt < 10)
        if placed is not None:
            break
    else:
        raise RuntimeError(f"{len(classes)} objects do not fit on a {size}×{size} image; lower max_objects")
    objects: list[tuple[int, int, int, int, int]] = []
    for cls, grey, silhouette, tint, left, top, box in placed:
        # the tile may stick out of the canvas where it is empty: clip it to the canvas
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + grey.shape[0], size), min(left + grey.shape[1], size)
        tile_grey = grey[y0 - top:y1 - top, x0 - left:x1 - left]
        tile_mask = silhouette[y0 - top:y1 - top, x0 - left:x1 - left]
        alpha = np.clip(tile_grey * 4.0, 0.0, 1.0)[:, :, None] * tile_mask[:, :, None]
        colour = (0.25 + 0.75 * tile_grey)[:, :, None] * tint * 255.0
        canvas[y0:y1, x0:x1] = alpha * colour + (1.0 - alpha) * canvas[y0:y1, x0:x1]
        mask[y0:y1, x0:x1][tile_mask] = cls + 1
        objects.append((cls, *box))
    return Composite(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), mask, tuple(objects))


def compose_split(split: str, count: int, *, seed: int = 0, size: int = IMAGE_SIZE, longtail_rho: float = 10.0,
                  background_share: float = 0.08, max_objects: int = 5) -> Iterator[Composite]:
    """The ``count`` composites of ``split`` ("train": long-tailed, "val": balanced), in order, seeded."""
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    rng = np.random.default_rng([seed, _STREAM[split]])
    fashion_images, fashion_labels = fashion_objects(_FASHION_SPLIT[split])
    pools = [fashion_images[fashion_labels == label] for label in FASHION_LABELS]
    backgrounds = round(background_share * count)
    per_image = np.zeros(count, dtype=int)
    per_image[backgrounds:] = rng.integers(1, max_objects + 1, size=count - backgrounds)
    per_image = rng.permutation(per_image)
    sequence = np.repeat(np.arange(len(CLASSES)), class_counts(int(per_image.sum()), class_shares(split, longtail_rho)))
    sequence = rng.permutation(sequence)
    offsets = np.concatenate([[0], np.cumsum(per_image)])
    for index in range(count):
        image_rng = np.random.default_rng([seed, _STREAM[split], index, 1])
        classes = [int(c) for c in sequence[offsets[index]:offsets[index + 1]]]
        yield compose(image_rng, classes, pools, size=size)


def yolo_lines(objects: tuple[tuple[int, int, int, int, int], ...], size: int) -> str:
    """The YOLO label file of an image's objects (``class cx cy w h`` normalised, 6 decimals)."""
    lines = [f"{cls} {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} {(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}"
             for cls, x0, y0, x1, y1 in objects]
    return "".join(line + "\n" for line in lines)


def size_bucket(area: float) -> str:
    """COCO's size bucket of an area in pixels²."""
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def _write_split(root: Path, split: str, composites: Iterator[Composite], size: int) -> dict[str, Any]:
    for kind in ("images", "labels", "masks"):
        (root / kind / split).mkdir(parents=True, exist_ok=True)
    coco: dict[str, Any] = {"images": [], "annotations": [],
                            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]}
    per_class = [0] * len(CLASSES)
    per_size = {"small": 0, "medium": 0, "large": 0}
    background = 0
    for index, composite in enumerate(composites):
        stem = f"{index:06d}"
        Image.fromarray(composite.image).save(root / "images" / split / f"{stem}.jpg", quality=_JPEG_QUALITY)
        Image.fromarray(composite.mask).save(root / "masks" / split / f"{stem}.png", optimize=False)
        (root / "labels" / split / f"{stem}.txt").write_text(yolo_lines(composite.objects, size))
        coco["images"].append({"id": index + 1, "file_name": f"images/{split}/{stem}.jpg", "width": size, "height": size})
        background += not composite.objects
        for cls, x0, y0, x1, y1 in composite.objects:
            area = (x1 - x0) * (y1 - y0)
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index + 1, "category_id": cls + 1,
                                        "bbox": [x0, y0, x1 - x0, y1 - y0], "area": area, "iscrowd": 0})
            per_class[cls] += 1
            per_size[size_bucket(area)] += 1
    (root / f"instances_{split}.json").write_text(json.dumps(coco, separators=(",", ":")) + "\n")
    return {"images": len(coco["images"]), "background_images": background,
            "instances": dict(zip(CLASSES, per_class)), "sizes": per_size}


def write_detection_dataset(out: str | Path, *, train_images: int = 1200, val_images: int = 300, seed: int = 0,
                            size: int = IMAGE_SIZE, longtail_rho: float = 10.0, background_share: float = 0.08,
                            max_objects: int = 5, overwrite: bool = False) -> dict[str, Any]:
    """Write the dataset described in the module docstring to ``out``; returns its record
    (``detection_dataset.json``). Written to a hidden sibling folder and renamed into place; an existing
    ``out`` needs ``overwrite``."""
    out = Path(out).resolve()
    for name, value in (("train_images", train_images), ("val_images", val_images)):
        if value < 1:
            raise UsageError(f"{name} must be >= 1, not {value}")
    if not 0.0 <= background_share < 1.0 or longtail_rho < 1.0 or not 1 <= max_objects <= 10 or size < 64:
        raise UsageError("need 0 <= background_share < 1, longtail_rho >= 1, 1 <= max_objects <= 10 and size >= 64")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; fix: pass --overwrite (overwrite=True) or another output folder")
    partial = out.with_name(f".{out.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    options: dict[str, Any] = {"size": size, "longtail_rho": longtail_rho, "background_share": background_share, "max_objects": max_objects}
    for split in SPLITS:  # fail before writing anything when Fashion-MNIST is missing
        fashion_objects(_FASHION_SPLIT[split])
    background_photos()
    record: dict[str, Any] = {
        "generator": "repcurate.example_detection", "seed": seed, **options,
        "classes": list(CLASSES), "fashion_mnist_labels": list(FASHION_LABELS),
        "mask_values": "0 = background, k = class k - 1", "coco_category_id": "class + 1",
        "photos": [name for _, name in PHOTOS]}
    try:
        for split, count in (("train", train_images), ("val", val_images)):
            record[split] = _write_split(partial, split, compose_split(split, count, seed=seed, **options), size)
        names = "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASSES))
        (partial / "data.yaml").write_text(f"path: {json.dumps(str(out))}\ntrain: images/train\nval: images/val\nnames:\n{names}")
        (partial / "detection_dataset.json").write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return record
