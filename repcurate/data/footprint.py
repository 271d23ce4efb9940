"""What a data source reads, so that no output may land on it: its files and the folders holding its data.

Every command's output flags (``build --out`` / ``--report``, ``check --output`` / ``--report``, ``confirm
--output`` / ``--report`` / ``--export``, ``doctor --report``, ``report --out``, ``export --out``) are checked
against the footprint of every source the command reads *before any work*:

- an image folder (class folders, flat, segmentation ``images/`` + ``masks/``): the folder;
- a CSV / JSONL list: the list file, and every folder holding a listed image;
- a YOLO ``data.yaml``: the YAML, every split of it (``train``, ``val``, ``test``: image folders, image-list files and
  the folders of the images they list) and the ``labels/`` folder beside each images folder;
- a COCO JSON: the JSON, and the folder its ``file_name`` paths are relative to (``--images-dir`` or the JSON's folder).

The footprint is computed from the source's own description (no image is read, a YAML or list is parsed): a source
that cannot be parsed yields its own path only, and the command then fails on it with the reader's error.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from repcurate.errors import RepcurateError

_YAML_SUFFIXES = (".yaml", ".yml")
_JSON_SUFFIXES = (".json",)
_LIST_SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class Footprint:
    """The files a source reads (never overwritten) and the folders holding its data (nothing is written in them)."""

    files: tuple[Path, ...] = ()
    folders: tuple[Path, ...] = ()

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint(_unique(self.files + other.files), _unique(self.folders + other.folders))

    def inputs(self, role: str) -> list[tuple[str, Path]]:
        """``(role, path)`` pairs of every file and folder, for the output guards of :mod:`repcurate.io.outputs`."""
        return [(f"{role} file", path) for path in self.files] + [(f"{role} folder", path) for path in self.folders]


def _unique(paths: Iterable[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(Path(os.path.abspath(p)) for p in paths))


def source_footprint(source: str | os.PathLike[str] | None, *, images_dir: str | os.PathLike[str] | None = None) -> Footprint:
    """The :class:`Footprint` of a training or eval source as given on the command line (``None``: nothing)."""
    if source is None:
        return Footprint()
    path = Path(source)
    if path.is_dir():
        return Footprint(folders=(path,))
    suffix = path.suffix.lower()
    try:
        if suffix in _YAML_SUFFIXES:
            return _yolo_footprint(path)
        if suffix in _JSON_SUFFIXES:
            return Footprint(files=(path,), folders=(Path(images_dir) if images_dir is not None else path.parent,))
        if suffix in _LIST_SUFFIXES:
            return _list_footprint(path)
    except (RepcurateError, OSError, ValueError):
        pass  # the command reports the unreadable source itself; guard what is certain
    return Footprint(files=(path,))


def _list_footprint(list_file: Path) -> Footprint:
    from repcurate.data.scan import read_list_rows

    base = list_file.resolve().parent
    listed = (Path(os.path.normpath(Path(raw) if Path(raw).is_absolute() else base / raw))
              for _number, raw, _label in read_list_rows(list_file))
    parents = {path.parent for path in listed if path.exists()}  # a missing file holds nothing to protect
    return Footprint(files=(list_file,), folders=tuple(sorted(parents)))


def _yolo_footprint(yaml_path: Path) -> Footprint:
    from repcurate.data.images import is_image_path
    from repcurate.data.yolo import SPLITS, dataset_root, label_path, list_file_images, load_yaml_mapping

    data = load_yaml_mapping(yaml_path)
    root = dataset_root(data, yaml_path)
    files: list[Path] = [yaml_path]
    folders: list[Path] = []
    for split in (*SPLITS, "validation"):
        entries = data.get(split)
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, str) or not entry:
                continue
            location = Path(os.path.normpath(root / entry))
            if not location.exists() and entry.startswith("../"):
                location = Path(os.path.normpath(root / entry[3:]))
            if location.is_dir():
                folders += [location, label_path(location / "image.jpg").parent]
            elif location.is_file():
                files.append(location)
                images = [location] if is_image_path(location) else list_file_images(location)
                for image in images:
                    folders += [image.parent, label_path(image).parent]
    return Footprint(files=_unique(files), folders=_unique(folders))


def set_footprint(directory: str | os.PathLike[str] | None) -> Footprint:
    """The :class:`Footprint` of a ``repcurate build`` set: its own files, and the training source its manifest records
    (``root``, ``train_source``: the images a report shows and ``confirm`` draws random sets from)."""
    if directory is None:
        return Footprint()
    from repcurate.io.safe_read import UnsafeFile, parse_json, read_bytes

    directory = Path(directory)
    own = Footprint(files=tuple(directory / name for name in ("manifest.json", "manifest.sig", "calibration.npz", "projection.npz")))
    try:
        manifest = parse_json(read_bytes(directory / "manifest.json", "manifest"))
    except (UnsafeFile, ValueError):
        return own
    if not isinstance(manifest, dict):
        return own
    objects = manifest.get("objects")
    images_dir = objects.get("images_dir") if isinstance(objects, dict) else None
    footprint = own
    for location in (manifest.get("root"), manifest.get("train_source")):
        if isinstance(location, str) and location:
            footprint = footprint | source_footprint(
                location, images_dir=images_dir if isinstance(images_dir, str) and images_dir else None)
    return footprint

