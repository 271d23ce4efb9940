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
  and three or more ``x y`` pairs (a segment polygon) counts as the box around the polygon. When the YAML has
  ``kpt_shape: [k, d]`` (a pose dataset, d = 2 or 3) a line is ``class cx cy w h`` followed by k keypoints of d
  values, and its box is used; without ``kpt_shape`` a line of another length (e.g. keypoints) is skipped as
  ``unsupported_label_format``.

Bad files are skipped with a reason (see :mod:`repcurate.data.annotation_rules`); a skip's detail names the line
and the value's position, never the file's text. The YAML is untrusted: read with YAML aliases refused
(:func:`repcurate.io.safe_read.parse_yaml`), ``names`` bounded (:data:`MAX_NAMES` strings of at most
:data:`MAX_NAME_CHARS` characters). Every file is read as a regular file under a size cap
(:mod:`repcurate.io.safe_read`): a FIFO or device label is ``not_a_regular_file``, a huge one ``too_large``.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from repcurate.data.annotation_rules import BadAnnotation, checked_box, displayed_size
from repcurate.data.annotations import AnnotatedDataset, AnnotatedImage, Box, SkippedAnnotation
from repcurate.data.images import is_image_path
from repcurate.errors import InputError
from repcurate.io.safe_read import UnsafeFile, parse_yaml, read_text

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: Most class names a data.yaml may list, and the longest name (characters).
MAX_NAMES = 10_000
MAX_NAME_CHARS = 256
_FIX = ("fix: pass an Ultralytics dataset YAML with 'path', 'train', 'val' and 'names' "
        "(https://docs.ultralytics.com/datasets/detect/)")


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """The YAML file as a mapping (``yaml.safe_load``: no Python objects), else :class:`InputError`."""
    import yaml

    try:
        data = parse_yaml(read_text(path, "yaml"))
    except UnsafeFile as exc:
        if exc.reason == "not_found":
            raise InputError(f"{path}: file not found; {_FIX}") from None
        raise InputError(f"{path}: cannot use the file ({exc.detail}); {_FIX}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read the file (not UTF-8 text); {_FIX}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{where}; {_FIX}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a YOLO dataset YAML (it holds no key: value mapping); {_FIX}")
    return data


def _name(value: Any, path: Path, position: str) -> str:
    """One class name: a string (or an integer, as YAML reads a bare ``7``) of at most :data:`MAX_NAME_CHARS`."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"{path}: 'names' {position} is a {type(value).__name__}, not a class name; "
                         f"fix: list the class names as strings; {_FIX}")
    if len(value) > MAX_NAME_CHARS:
        raise InputError(f"{path}: 'names' {position} is {len(value)} characters long (at most {MAX_NAME_CHARS}); "
                         "fix: shorten the class name")
    return value


def _is_class_id(key: Any) -> bool:
    """A ``names`` key: an integer, or a string of ASCII digits."""
    if isinstance(key, str):
        return key.strip().isascii() and key.strip().isdigit()
    return isinstance(key, int) and not isinstance(key, bool)


def class_names(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    """The class names of a ``data.yaml`` (``names`` as list or dict with keys 0..n-1, or ``nc``): at most
    :data:`MAX_NAMES` strings of at most :data:`MAX_NAME_CHARS` characters, else :class:`InputError`."""
    names = data.get("names")
    nc = data.get("nc")
    if isinstance(names, (list, dict)) and len(names) > MAX_NAMES:
        raise InputError(f"{path}: 'names' lists {len(names)} classes (at most {MAX_NAMES}); {_FIX}")
    if names is None:
        if isinstance(nc, int) and not isinstance(nc, bool) and 0 < nc <= MAX_NAMES:
            return tuple(f"class_{i}" for i in range(nc))
        raise InputError(f"{path}: not a YOLO dataset YAML (no 'names' list and no 'nc' count from 1 to "
                         f"{MAX_NAMES}); {_FIX}")
    if isinstance(names, dict):
        if not all(_is_class_id(k) for k in names):
            raise InputError(f"{path}: 'names' keys must be class ids 0, 1, 2, ...; {_FIX}")
        by_id = {int(k): _name(v, path, f"entry {int(k)}") for k, v in names.items()}
        if sorted(by_id) != list(range(len(by_id))):
            raise InputError(f"{path}: 'names' keys must be the class ids 0..{len(by_id) - 1} without gaps; {_FIX}")
        result = tuple(by_id[i] for i in range(len(by_id)))
    elif isinstance(names, list):
        result = tuple(_name(n, path, f"entry {i}") for i, n in enumerate(names))
    else:
        raise InputError(f"{path}: 'names' must be a list or a {{id: name}} mapping; {_FIX}")
    if not result:
        raise InputError(f"{path}: 'names' is empty; {_FIX}")
    if nc is not None and nc != len(result):
        raise InputError(f"{path}: 'nc: {nc!r:.20}' does not match the {len(result)} 'names'; fix: make them agree")
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
    """The image paths of a split's ``.txt`` list (relative lines are relative to the list's folder)."""
    try:
        lines = read_text(list_file, "list").splitlines()
    except UnsafeFile as exc:
        raise InputError(f"{list_file}: cannot use the image list ({exc.detail}); fix: one image path per line, "
                         "UTF-8") from None
    except UnicodeDecodeError:
        raise InputError(f"{list_file}: cannot read the image list (not UTF-8 text); fix: one image path per line, "
                         "UTF-8") from None
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
                         if is_image_path(p) and not p.is_dir()  # a FIFO or device is listed, then skipped
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


def _number(token: str, line: int, position: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise BadAnnotation("unparseable_label", f"line {line}: value {position} is not a number") from None
    if not math.isfinite(value):
        raise BadAnnotation("unparseable_label", f"line {line}: value {position} is not a finite number")
    return value


def keypoint_shape(data: dict[str, Any], yaml_path: Path) -> tuple[int, int] | None:
    """A pose dataset's ``kpt_shape: [keypoints, values per keypoint (2 or 3)]``, or None when the YAML has none."""
    shape = data.get("kpt_shape")
    if shape is None:
        return None
    if (not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in shape)
            or not 0 < shape[0] <= 1000 or shape[1] not in (2, 3)):
        raise InputError(f"{yaml_path}: 'kpt_shape' must be [keypoints, 2 or 3] (e.g. [17, 3]); fix: correct it "
                         "(https://docs.ultralytics.com/datasets/pose/)")
    return shape[0], shape[1]


def parse_label_line(text: str, line: int, classes: int, width: int, height: int,
                     keypoints: tuple[int, int] | None = None) -> Box:
    """One ``class cx cy w h`` (or ``class x y x y x y ...`` polygon) line as a box in pixels; with ``keypoints``
    (a pose dataset's ``kpt_shape``), ``class cx cy w h`` followed by the keypoints, whose box is used."""
    tokens = text.split()
    values = [_number(t, line, i) for i, t in enumerate(tokens, start=1)]
    if keypoints is not None:
        expected = 5 + keypoints[0] * keypoints[1]
        if len(values) != expected:
            raise BadAnnotation("unparseable_label", f"line {line}: {len(values)} values; expected {expected} "
                                                     f"('class cx cy w h' and {keypoints[0]} keypoints of "
                                                     f"{keypoints[1]} values, as kpt_shape says)")
    elif len(values) > 5 and len(values) % 2 == 0:
        raise BadAnnotation("unsupported_label_format", f"line {line}: {len(values)} values, neither 'class cx cy w h' "
                                                        "nor a class and x y pairs (keypoints need 'kpt_shape' in "
                                                        "the data.yaml)")
    elif len(values) != 5 and len(values) < 7:
        raise BadAnnotation("unparseable_label", f"line {line}: {len(values)} values; expected 'class cx cy w h' "
                                                 "or a class and 3 or more x y pairs")
    cls_value = values[0]
    if cls_value != int(cls_value):
        raise BadAnnotation("unparseable_label", f"line {line}: the class (value 1) is not an integer")
    cls = int(cls_value)
    if not 0 <= cls < classes:
        raise BadAnnotation("label_out_of_range", f"line {line}: class {cls} is not in 0..{classes - 1} "
                                                  f"(the dataset has {classes} names)")
    if len(values) == 5 or keypoints is not None:
        cx, cy, w, h = values[1:5]
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


def read_label_file(path: Path, classes: int, width: int, height: int,
                    keypoints: tuple[int, int] | None = None) -> tuple[Box, ...]:
    """The boxes of one label file (none when it is missing or empty); :class:`BadAnnotation` on the first bad line
    or for a file that is not a regular file (``not_a_regular_file``) or larger than the label cap (``too_large``)."""
    try:
        text = read_text(path, "label")
    except UnsafeFile as exc:
        if exc.reason == "not_found":
            return ()
        reason = exc.reason if exc.reason in ("not_a_regular_file", "too_large") else "unparseable_label"
        raise BadAnnotation(reason, f"cannot read the label file ({exc.detail})") from None
    except UnicodeDecodeError as exc:
        raise BadAnnotation("unparseable_label", f"the label file is not UTF-8 text (byte {exc.start})") from None
    return tuple(parse_label_line(line, number, classes, width, height, keypoints)
                 for number, line in enumerate(text.splitlines(), start=1) if line.strip())


def read_yolo(yaml_path: str | Path, split: str = "train") -> AnnotatedDataset:
    """One split of an Ultralytics YOLO dataset: every image with its boxes; bad files skipped with a reason."""
    yaml_path = Path(yaml_path)
    data = load_yaml_mapping(yaml_path)
    if not any(k in data for k in ("train", "val", "validation", "test")):
        raise InputError(f"{yaml_path}: not a YOLO dataset YAML (no 'train' / 'val' split); {_FIX}")
    names = class_names(data, yaml_path)
    keypoints = keypoint_shape(data, yaml_path)
    root, folder = dataset_root(data, yaml_path), yaml_path.resolve().parent
    if os.path.commonpath([root, folder]) != os.fspath(folder):
        log.info("%s: 'path' names %s, outside the YAML's folder: images and labels are read from there",
                 yaml_path, root)
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
            boxes = read_label_file(labels, len(names), width, height, keypoints)
        except BadAnnotation as exc:
            skipped.append(SkippedAnnotation(labels, exc.reason, exc.detail))
            continue
        images.append(AnnotatedImage(image, width, height, boxes))
    return AnnotatedDataset(source=yaml_path.resolve(), split=split, names=names, images=tuple(images),
                            skipped=tuple(skipped))
