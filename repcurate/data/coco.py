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
without area drops its image; an image file that is not there is ``missing_image``; a ``file_name`` that is
absolute or leaves the image folder with ``..`` is ``outside_image_root`` (unless ``allow_outside_root``). A
skip's detail names the entry's position (``images[3]``, ``annotations[12]``), never its values.

The JSON is read as a regular file of at most the annotation cap (256 MiB by default,
``REPCURATE_MAX_ANNOTATION_BYTES`` to change; see :mod:`repcurate.io.safe_read`) and parsed whole, with the
``segmentation`` masks dropped as they are parsed: the peak is about 2.3 times the file's size (BENCHMARKS.md,
"Memory: annotation files"), so at most about 620 MB above the process's own at the default cap.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from repcurate.data.annotation_rules import BadAnnotation, checked_box, displayed_size
from repcurate.data.annotations import AnnotatedDataset, AnnotatedImage, Box, SkippedAnnotation
from repcurate.errors import InputError
from repcurate.io.safe_read import UnsafeFile, parse_json, read_text

#: Whether ``file_name`` paths outside the image folder are read (``--allow-outside-root``); see
#: :func:`images_outside_root`. A context variable: a command line sets it once for everything its command reads.
_OUTSIDE_ROOT: ContextVar[bool] = ContextVar("repcurate_coco_outside_root", default=False)
#: Members of a COCO JSON the box reader never uses, dropped while parsing (polygon / RLE masks, the bulk of the file).
_UNUSED_KEYS = frozenset({"segmentation"})
_FIX = "fix: pass a COCO instances JSON with 'images', 'annotations' and 'categories' (https://cocodataset.org/#format-data)"


def _load(path: Path) -> dict[str, Any]:
    try:
        # The bytes are freed before parsing, and the masks (unused: boxes are read) as each annotation is parsed.
        data = parse_json(read_text(path, "annotation"), depth_limit=None, drop_keys=_UNUSED_KEYS)
    except UnsafeFile as exc:
        if exc.reason == "not_found":
            raise InputError(f"{path}: file not found; {_FIX}") from None
        raise InputError(f"{path}: cannot use the file ({exc.detail}); {_FIX}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {_FIX}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read the file (not UTF-8 JSON); {_FIX}") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise InputError(f"{path}: not a COCO instances JSON (no 'images' and 'categories' lists); {_FIX}")
    if not isinstance(data.get("annotations", []), list):
        raise InputError(f"{path}: 'annotations' must be a list; {_FIX}")
    return data


def _is_id(value: Any) -> bool:
    """A COCO id: an integer or a string (hashable, comparable); never a list, object, float or boolean."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _categories(data: dict[str, Any], path: Path) -> tuple[dict[Any, int], tuple[str, ...]]:
    """COCO category id → contiguous class id (in the listed order), and the class names."""
    class_of: dict[Any, int] = {}
    names: list[str] = []
    for position, entry in enumerate(data["categories"]):
        if not isinstance(entry, dict) or not _is_id(entry.get("id")) or not isinstance(entry.get("name"), str):
            raise InputError(f"{path}: categories[{position}] needs an integer 'id' and a 'name' string; {_FIX}")
        if entry["id"] in class_of:
            raise InputError(f"{path}: categories[{position}] repeats the id of an earlier category; fix: give each "
                             "category its own id")
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


def _box(position: int, annotation: dict[str, Any], class_of: dict[Any, int], width: int, height: int) -> Box:
    """Annotation ``annotations[position]`` as a box; a skip's detail names its position, never its values."""
    where = f"annotations[{position}]"
    category = annotation.get("category_id")
    if not _is_id(category) or category not in class_of:
        raise BadAnnotation("unknown_class", f"{where}: its category_id is not an id listed in 'categories'")
    bbox = annotation.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)):
        raise BadAnnotation("unparseable_label", f"{where}: its bbox is not [x, y, width, height] (4 finite numbers)")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise BadAnnotation("empty_box", f"{where}: bbox width {w:g} and height {h:g} must be positive")
    try:
        return checked_box(class_of[category], x, y, x + w, y + h, width, height,
                           crowd=bool(annotation.get("iscrowd", 0)))
    except BadAnnotation as exc:
        raise BadAnnotation(exc.reason, f"{where}: {exc.detail}") from None


def outside_root_allowed() -> bool:
    """Whether COCO ``file_name`` paths outside the image folder are read now (``--allow-outside-root``)."""
    return _OUTSIDE_ROOT.get()


@contextlib.contextmanager
def images_outside_root(allowed: bool = True) -> Iterator[None]:
    """Within the block, :func:`read_coco` (called without ``allow_outside_root``) reads ``file_name`` paths that are
    absolute or leave the image folder (what ``--allow-outside-root`` does for build / check / confirm / doctor)."""
    token = _OUTSIDE_ROOT.set(allowed)
    try:
        yield
    finally:
        _OUTSIDE_ROOT.reset(token)


def image_location(base: Path, file_name: str, *, allow_outside_root: bool = False) -> Path:
    """The image a ``file_name`` names below ``base``; :class:`BadAnnotation` ``outside_image_root`` when it is
    absolute or climbs out with ``..`` (unless ``allow_outside_root``), ``unparseable_label`` for a NUL byte."""
    if "\x00" in file_name or not file_name:
        raise BadAnnotation("unparseable_label", "its file_name is empty or holds a NUL byte")
    path = Path(os.path.normpath(base / file_name))
    if not allow_outside_root and os.path.commonpath([base, path]) != os.fspath(base):
        raise BadAnnotation("outside_image_root", f"its file_name leaves the image folder {base} (absolute or '..'); "
                                                  "fix: pass --allow-outside-root to read it anyway")
    return path


def read_coco(json_path: str | Path, *, images_dir: str | Path | None = None, split: str = "",
              allow_outside_root: bool | None = None) -> AnnotatedDataset:
    """A COCO instances JSON: every listed image with its boxes; bad files skipped with a reason.

    ``split`` only names the result (a COCO JSON holds one split); ``images_dir`` is the folder ``file_name``
    is relative to (default: the JSON's folder). A ``file_name`` that is absolute or leaves that folder with
    ``..`` is skipped as ``outside_image_root`` unless ``allow_outside_root`` (None: as
    :func:`images_outside_root` set it, by default not)."""
    if allow_outside_root is None:
        allow_outside_root = _OUTSIDE_ROOT.get()
    json_path = Path(json_path)
    data = _load(json_path)
    class_of, names = _categories(data, json_path)
    base = Path(images_dir).resolve() if images_dir is not None else json_path.resolve().parent
    if images_dir is not None and not base.is_dir():
        raise InputError(f"{images_dir}: --images-dir is not a folder; fix: pass the folder the JSON's file_name "
                         "paths are relative to")
    by_image: dict[Any, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for position, annotation in enumerate(data.get("annotations", [])):
        if isinstance(annotation, dict) and _is_id(annotation.get("image_id")):
            by_image[annotation["image_id"]].append((position, annotation))
    images: list[AnnotatedImage] = []
    skipped: list[SkippedAnnotation] = []
    seen: set[Path] = set()
    listed_ids: set[Any] = set()
    for position, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) or not _is_id(entry.get("id")):
            skipped.append(SkippedAnnotation(json_path, "unparseable_label",
                                             f"images[{position}] has no file_name string or no integer id"))
            continue
        listed_ids.add(entry["id"])
        try:
            path = image_location(base, entry["file_name"], allow_outside_root=allow_outside_root)
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(json_path, exc.reason, f"images[{position}]: {exc.detail}"))
            continue
        if path in seen:
            continue
        seen.add(path)
        try:
            if not path.exists():
                raise BadAnnotation("missing_image", f"images[{position}]: file not found")
            width, height = _size(entry, path)
            boxes = tuple(_box(i, a, class_of, width, height) for i, a in by_image.get(entry["id"], []))
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(path, exc.reason, exc.detail))
            continue
        images.append(AnnotatedImage(path, width, height, boxes))
    orphans = sum(len(by_image[i]) for i in by_image if i not in listed_ids)
    if orphans:
        skipped.append(SkippedAnnotation(json_path, "missing_image", f"{orphans} annotation(s) name image ids that "
                                                                     "'images' does not list"))
    images.sort(key=lambda im: im.path)
    return AnnotatedDataset(source=json_path.resolve(), split=split, names=names, images=tuple(images),
                            skipped=tuple(sorted(skipped, key=lambda s: (s.path, s.reason, s.detail))))
