"""Read an Ultralytics YOLO dataset (``data.yaml`` + ``labels/*.txt``) into an :class:`AnnotatedDataset`.

What is accepted (Ultralytics' conventions, https://docs.ultralytics.com/datasets/detect/):

- ``data.yaml``: ``path`` (the dataset root; relative to the YAML's folder; the YAML's folder when absent),
  ``train`` / ``val`` / ``test`` (relative to ``path``), ``names`` (a list, or a dict ``{0: name, ...}`` with
  keys 0..n-1) or only ``nc`` (names ``class_0`` ...). A split is a folder of images (searched recursively),
  a ``.txt`` list of image paths (one per line), or a list of those.
- In a list file, absolute paths are kept and relative ones (``./images/a.jpg`` or ``images/a.jpg``) are
  relative to the list file's folder. (Ultralytics resolves ``./`` this way but other relative lines against the
  working directory; repcurate never lets the working directory change what a dataset means.)
- Each image's labels are in the file whose path replaces the last ``/images/`` folder of the image path with
  ``/labels/`` and the extension with ``.txt``. A missing or empty label file is a background image.
- A label line is ``class cx cy w h``, normalised to 0..1 by the image's width and height; a line of a class
  and three or more ``x y`` pairs (a segment polygon) counts as the box around the polygon.

Bad files are skipped with a reason (see :mod:`repcurate.data.annotation_rules`); the YAML is untrusted and read
with ``yaml.safe_load``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from repcurate.data.annotation_rules import BadAnnotation, checked_box, displayed_size
from repcurate.data.annotations import AnnotatedDataset, AnnotatedImage, Box, SkippedAnnotation
from repcurate.data.images import is_image_path
from repcurate.errors import InputError

SPLITS = ("train", "val", "test")
_FIX = ("fix: pass an Ultralytics dataset YAML with 'path', 'train', 'val' and 'names' "
        "(https://docs.ultralytics.com/datasets/detect/)")


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """The YAML file as a mapping (``yaml.safe_load``: no Python objects), else :class:`InputError`."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; {_FIX}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc}); {_FIX}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{where}; {_FIX}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a YOLO dataset YAML (it holds no key: value mapping); {_FIX}")
    return data


def class_names(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    """The class names of a ``data.yaml`` (``names`` as list or dict with keys 0..n-1, or ``nc``)."""
    names = data.get("names")
    nc = data.get("nc")
    if names is None:
        if isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
            return tuple(f"class_{i}" for i in range(nc))
        raise InputError(f"{path}: not a YOLO dataset YAML (no 'names' list and no 'nc' count); {_FIX}")
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise InputError(f"{path}: 'names' keys must be class ids 0, 1, 2, ...; {_FIX}") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise InputError(f"{path}: 'names' keys must be the class ids 0..{len(by_id) - 1} without gaps; {_FIX}")
        result = tuple(by_id[i] for i in range(len(by_id)))
    elif isinstance(names, list):
        result = tuple(str(n) for n in names)
    else:
        raise InputError(f"{path}: 'names' must be a list or a {{id: name}} mapping; {_FIX}")
    if not result:
        raise InputError(f"{path}: 'names' is empty; {_FIX}")
    if nc is not None and nc != len(result):
        raise InputError(f"{path}: 'nc: {nc}' does not match the {len(result)} 'names'; fix: make them agree")
    return result


def dataset_root(data: dict[str, Any], yaml_path: Path) -> Path:
    """``path`` of the YAML, relative to the YAML's folder (the YAML's folder when absent)."""
    base = yaml_path.resolve().parent
    root = data.get("path")
    if root in (None, ""):
        return base
    if not isinstance(root, str):
        raise InputError(f"{yaml_path}: 'path' must be a folder name; {_FIX}")
    return Path(os.path.normpath(base / root))


def list_file_images(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{list_file}: cannot read the image list ({exc}); fix: one image path per line, UTF-8") from None
    base = list_file.resolve().parent
    return [Path(os.path.normpath(base / line.strip())) for line in lines if line.strip()]


def split_images(data: dict[str, Any], yaml_path: Path, split: str) -> list[Path]:
    """Every image path of ``split`` (folders searched recursively, list files read), sorted, without repeats."""
    entries = data.get(split)
    if split == "val" and entries is None:
        entries = data.get("validation")  # the spelling some exporters write
    if entries in (None, "", []):
        present = [s for s in SPLITS if data.get(s)]
        raise InputError(f"{yaml_path}: the dataset has no '{split}' split; fix: pass --split "
                         f"{' or '.join(present) or 'train'} (the splits it names)")
    root = dataset_root(data, yaml_path)
    found: list[Path] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, str):
            raise InputError(f"{yaml_path}: '{split}' must be a folder, an image-list .txt, or a list of those; {_FIX}")
        location = Path(os.path.normpath(root / entry))
        if not location.exists() and entry.startswith("../"):  # Ultralytics' fallback for a 'path' one level off
            location = Path(os.path.normpath(root / entry[3:]))
        if location.is_dir():
            found.extend(p for p in location.rglob("*")
                         if p.is_file() and is_image_path(p)
                         and not any(part.startswith(".") for part in p.relative_to(location).parts))
        elif location.is_file() and is_image_path(location):
            found.append(location)
        elif location.is_file():
            found.extend(list_file_images(location))
        else:
            raise InputError(f"{yaml_path}: the '{split}' split {location} does not exist; fix: correct 'path' / "
                             f"'{split}' in the YAML (they are relative to the YAML's folder)")
    return sorted(set(found))


def label_path(image: Path) -> Path:
    """Ultralytics' label file of an image: the last ``/images/`` folder becomes ``/labels/``, the suffix ``.txt``."""
    text = os.fspath(image)
    marker, replacement = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    head, found, tail = text.rpartition(marker)
    swapped = head + replacement + tail if found else text
    return Path(swapped).with_suffix(".txt")


def _number(token: str, line: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise BadAnnotation("unparseable_label", f"line {line}: {token!r} is not a number") from None
    if not math.isfinite(value):
        raise BadAnnotation("unparseable_label", f"line {line}: {token!r} is not a finite number")
    return value


def parse_label_line(text: str, line: int, classes: int, width: int, height: int) -> Box:
    """One ``class cx cy w h`` (or ``class x y x y x y ...`` polygon) line as a box in pixels."""
    tokens = text.split()
    values = [_number(t, line) for t in tokens]
    if len(values) != 5 and (len(values) < 7 or len(values) % 2 == 0):
        raise BadAnnotation("unparseable_label", f"line {line}: {len(values)} values; expected 'class cx cy w h' "
                                                 "or a class and 3 or more x y pairs")
    cls_value = values[0]
    if cls_value != int(cls_value):
        raise BadAnnotation("unparseable_label", f"line {line}: class {tokens[0]!r} is not an integer")
    cls = int(cls_value)
    if not 0 <= cls < classes:
        raise BadAnnotation("label_out_of_range", f"line {line}: class {cls} is not in 0..{classes - 1} "
                                                  f"(the dataset has {classes} names)")
    if len(values) == 5:
        cx, cy, w, h = values[1:]
        if w <= 0 or h <= 0:
            raise BadAnnotation("empty_box", f"line {line}: width {w:g} and height {h:g} must be positive")
        x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    else:
        xs, ys = values[1::2], values[2::2]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    try:
        return checked_box(cls, x0 * width, y0 * height, x1 * width, y1 * height, width, height)
    except BadAnnotation as exc:
        raise BadAnnotation(exc.reason, f"line {line}: {exc.detail}") from None


def read_label_file(path: Path, classes: int, width: int, height: int) -> tuple[Box, ...]:
    """The boxes of one label file (none when it is missing or empty); :class:`BadAnnotation` on the first bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadAnnotation("unparseable_label", f"cannot read the label file ({exc})") from None
    return tuple(parse_label_line(line, number, classes, width, height)
                 for number, line in enumerate(text.splitlines(), start=1) if line.strip())


def read_yolo(yaml_path: str | Path, split: str = "train") -> AnnotatedDataset:
    """One split of an Ultralytics YOLO dataset: every image with its boxes; bad files skipped with a reason."""
    yaml_path = Path(yaml_path)
    data = load_yaml_mapping(yaml_path)
    if not any(k in data for k in ("train", "val", "validation", "test")):
        raise InputError(f"{yaml_path}: not a YOLO dataset YAML (no 'train' / 'val' split); {_FIX}")
    names = class_names(data, yaml_path)
    images: list[AnnotatedImage] = []
    skipped: list[SkippedAnnotation] = []
    for image in split_images(data, yaml_path, split):
        try:
            width, height = displayed_size(image)
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(image, exc.reason, exc.detail))
            continue
        labels = label_path(image)
        try:
            boxes = read_label_file(labels, len(names), width, height)
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(labels, exc.reason, exc.detail))
            continue
        images.append(AnnotatedImage(image, width, height, boxes))
    return AnnotatedDataset(source=yaml_path.resolve(), split=split, names=names, images=tuple(images),
                            skipped=tuple(skipped))
