"""Read a COCO object-detection JSON (``instances_*.json``) into an :class:`AnnotatedDataset`.

- ``images``: ``id``, ``file_name`` (relative to ``images_dir``, by default the JSON's folder), ``width`` and
  ``height`` (read from the image header when absent).
- ``categories``: ``id``, ``name``. Class ids are **contiguous, in the order the categories are listed** (COCO's
  own ids 1..90 have gaps); the dataset's ``names`` follow that order.
- ``annotations``: ``image_id``, ``category_id``, ``bbox`` ``[x, y, width, height]`` in pixels, ``iscrowd``.
  Crowd regions (``iscrowd: 1``) are kept as boxes with ``crowd=True`` — an evaluator ignores detections in them,
  as COCO's own does — but are not instances: the object quotas do not count them.
- An image no annotation names is a background image.

Bad files are skipped with a reason (see :mod:`repcurate.data.annotation_rules`): an annotation with an unknown
``category_id`` (``unknown_class``), a malformed ``bbox`` (``unparseable_label``), a box outside the image or
without area drops its image; an image file that is not there is ``missing_image``.
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from repcurate.data.annotation_rules import BadAnnotation, checked_box, displayed_size
from repcurate.data.annotations import AnnotatedDataset, AnnotatedImage, Box, SkippedAnnotation
from repcurate.errors import InputError

_FIX = "fix: pass a COCO instances JSON with 'images', 'annotations' and 'categories' (https://cocodataset.org/#format-data)"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; {_FIX}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc}); {_FIX}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {_FIX}") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise InputError(f"{path}: not a COCO instances JSON (no 'images' and 'categories' lists); {_FIX}")
    if not isinstance(data.get("annotations", []), list):
        raise InputError(f"{path}: 'annotations' must be a list; {_FIX}")
    return data


def _categories(data: dict[str, Any], path: Path) -> tuple[dict[Any, int], tuple[str, ...]]:
    """COCO category id → contiguous class id (in the listed order), and the class names."""
    class_of: dict[Any, int] = {}
    names: list[str] = []
    for entry in data["categories"]:
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("name"), str):
            raise InputError(f"{path}: every category needs an 'id' and a 'name'; {_FIX}")
        if entry["id"] in class_of:
            raise InputError(f"{path}: category id {entry['id']!r} is listed twice; fix: give each category its own id")
        class_of[entry["id"]] = len(names)
        names.append(entry["name"])
    if not names:
        raise InputError(f"{path}: 'categories' is empty; {_FIX}")
    return class_of, tuple(names)


def _size(entry: dict[str, Any], image: Path) -> tuple[int, int]:
    width, height = entry.get("width"), entry.get("height")
    if (isinstance(width, int) and isinstance(height, int) and not isinstance(width, bool)
            and not isinstance(height, bool) and width > 0 and height > 0):
        return width, height
    return displayed_size(image)


def _box(annotation: dict[str, Any], class_of: dict[Any, int], width: int, height: int) -> Box:
    ident = annotation.get("id", "?")
    category = annotation.get("category_id")
    if category not in class_of:
        raise BadAnnotation("unknown_class", f"annotation {ident}: category_id {category!r} is not in 'categories'")
    bbox = annotation.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)):
        raise BadAnnotation("unparseable_label", f"annotation {ident}: bbox {bbox!r} is not [x, y, width, height]")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise BadAnnotation("empty_box", f"annotation {ident}: bbox width {w:g} and height {h:g} must be positive")
    try:
        return checked_box(class_of[category], x, y, x + w, y + h, width, height,
                           crowd=bool(annotation.get("iscrowd", 0)))
    except BadAnnotation as exc:
        raise BadAnnotation(exc.reason, f"annotation {ident}: {exc.detail}") from None


def read_coco(json_path: str | Path, *, images_dir: str | Path | None = None, split: str = "") -> AnnotatedDataset:
    """A COCO instances JSON: every listed image with its boxes; bad files skipped with a reason.

    ``split`` only names the result (a COCO JSON holds one split); ``images_dir`` is the folder ``file_name``
    is relative to (default: the JSON's folder)."""
    json_path = Path(json_path)
    data = _load(json_path)
    class_of, names = _categories(data, json_path)
    base = Path(images_dir).resolve() if images_dir is not None else json_path.resolve().parent
    if images_dir is not None and not base.is_dir():
        raise InputError(f"{images_dir}: --images-dir is not a folder; fix: pass the folder the JSON's file_name "
                         "paths are relative to")
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for annotation in data.get("annotations", []):
        if isinstance(annotation, dict):
            by_image[annotation.get("image_id")].append(annotation)
    images: list[AnnotatedImage] = []
    skipped: list[SkippedAnnotation] = []
    seen: set[Path] = set()
    listed_ids: set[Any] = set()
    for entry in data["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            skipped.append(SkippedAnnotation(json_path, "unparseable_label", f"image entry {entry!r:.80} has no file_name"))
            continue
        listed_ids.add(entry.get("id"))
        path = Path(os.path.normpath(base / entry["file_name"]))
        if path in seen:
            continue
        seen.add(path)
        try:
            if not path.is_file():
                raise BadAnnotation("missing_image", f"image id {entry.get('id')!r}: file not found")
            width, height = _size(entry, path)
            boxes = tuple(_box(a, class_of, width, height) for a in by_image.get(entry.get("id"), []))
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(path, exc.reason, exc.detail))
            continue
        images.append(AnnotatedImage(path, width, height, boxes))
    orphans = sorted({str(i) for i in by_image if i not in listed_ids})
    if orphans:
        skipped.append(SkippedAnnotation(json_path, "missing_image", f"annotations name image ids that 'images' does "
                                                                     f"not list: {', '.join(orphans[:5])}"
                                                                     + (" ..." if len(orphans) > 5 else "")))
    images.sort(key=lambda im: im.path)
    return AnnotatedDataset(source=json_path.resolve(), split=split, names=names, images=tuple(images),
                            skipped=tuple(sorted(skipped, key=lambda s: (s.path, s.reason))))
