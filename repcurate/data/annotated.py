"""One entry point for annotated datasets, and their scan for ``build``: YOLO YAML, COCO JSON, segmentation folder.

:func:`read_annotated` picks the reader by what the path is; :func:`scan_annotated` turns the result into the
:class:`~repcurate.data.scan.ScanResult` every command consumes, with one :class:`AnnotatedRecord` per usable
image (its boxes travel with it to the selection) and every skipped annotation file as a skipped entry.
"""
from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from repcurate.data.annotations import AnnotatedDataset, AnnotatedImage, Box
from repcurate.data.coco import read_coco
from repcurate.data.layouts import COCO, SEGMENTATION, YOLO
from repcurate.data.scan import ImageRecord, ScanResult, SkippedFile, fingerprint_file, relative_path, require_text_path
from repcurate.data.segmentation_folder import read_segmentation_folder, segmentation_folders
from repcurate.data.yolo import read_yolo
from repcurate.errors import InputError
from repcurate.io.safe_read import UnsafeFile

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
#: The split of an annotated ``--eval-dir`` (a YOLO data.yaml / segmentation folder) read by default.
DEFAULT_EVAL_SPLIT = "val"


@dataclass(frozen=True)
class AnnotatedRecord(ImageRecord):
    """An image record of an annotated dataset: its objects (pixels of the original image) and mask path."""

    boxes: tuple[Box, ...] = ()
    width: int = 0
    height: int = 0
    mask: str | None = None

    def image(self, root: Path) -> AnnotatedImage:
        """This record as an :class:`AnnotatedImage` below ``root`` (its boxes and mask: what detection and
        segmentation score against)."""
        return AnnotatedImage(root / self.path, self.width, self.height, self.boxes,
                              None if self.mask is None else root / self.mask)


def is_annotated_source(path: str | Path) -> bool:
    """True for a YOLO ``.yaml``, a COCO ``.json`` or a segmentation folder (images/ + masks/)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in YAML_SUFFIXES + JSON_SUFFIXES
    return path.is_dir() and segmentation_folders(path.resolve()) is not None


def read_annotated(spec: str | Path, split: str = "train", images_dir: str | Path | None = None) -> AnnotatedDataset:
    """The ``split`` of a YOLO ``data.yaml``, a COCO ``instances_*.json`` (``images_dir``: the folder its
    ``file_name`` paths are relative to) or a segmentation folder."""
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return read_yolo(path, split)
    if suffix in JSON_SUFFIXES:
        return read_coco(path, images_dir=images_dir, split=split)
    if path.is_dir():
        return read_segmentation_folder(path, split)
    raise InputError(f"{path}: not an annotated dataset; fix: pass a YOLO data.yaml, a COCO instances JSON, or a "
                     "folder with images/ and masks/")


def scan_annotated(spec: str | Path, *, split: str = "train", images_dir: str | Path | None = None,
                   workers: int = 4) -> ScanResult:
    """Scan an annotated dataset for ``build``: records carry their boxes; skipped annotation files carry reasons.

    The root is the deepest folder holding the dataset file and every image (recorded paths are below it)."""
    dataset = read_annotated(spec, split, images_dir)
    return scan_annotated_images(spec, dataset, dataset.images, workers=workers)


def _fingerprint_all(
    candidates: list[tuple[Path, str | None]], root: Path, workers: int
) -> tuple[list[ImageRecord], list[SkippedFile]]:
    """Fingerprint candidate files in parallel; unreadable and empty files become skipped entries."""

    def one(item: tuple[Path, str | None]) -> ImageRecord | SkippedFile:
        path, label = item
        rel = relative_path(path, root)
        try:
            info = path.stat()
            size = info.st_size
            if size == 0 and stat_module.S_ISREG(info.st_mode):
                return SkippedFile(rel, "empty_file", "the file has 0 bytes")
            return ImageRecord(rel, label, size, fingerprint_file(path))
        except UnsafeFile as exc:
            return SkippedFile(rel, "unreadable" if exc.reason == "not_found" else exc.reason, exc.detail)
        except FileNotFoundError:
            return SkippedFile(rel, "unreadable", "file not found (missing or a broken link)")
        except OSError as exc:
            return SkippedFile(rel, "unreadable", exc.strerror or str(exc))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, candidates))
    records = [r for r in results if isinstance(r, ImageRecord)]
    skipped = [r for r in results if isinstance(r, SkippedFile)]
    return records, skipped


def scan_annotated_images(spec: str | Path, dataset: AnnotatedDataset, images: Sequence[AnnotatedImage], *,
                          workers: int = 4) -> ScanResult:
    """:func:`scan_annotated` of some of ``dataset``'s images (``build``'s candidate pool): only those are read
    (fingerprinted); the root and every skipped annotation file are the whole dataset's."""
    root = annotated_root(dataset)
    by_path = {image.path: image for image in images}
    records, unreadable = _fingerprint_all([(image.path, None) for image in images], root, workers)
    annotated: list[ImageRecord] = []
    for record in records:
        image = by_path[Path(os.path.normpath(root / record.path))]
        annotated.append(AnnotatedRecord(record.path, None, record.size_bytes, record.fingerprint, image.boxes,
                                         image.width, image.height,
                                         None if image.mask is None else image.mask.as_posix()))
    annotated.sort(key=lambda r: r.path)
    skipped = unreadable + [SkippedFile(relative_path(s.path, root), s.reason, s.detail) for s in dataset.skipped]
    skipped.sort(key=lambda s: s.path)
    return ScanResult(root=root, layout=dataset_layout(spec), records=annotated, skipped=skipped,
                      class_names=list(dataset.names))


def annotated_root(dataset: AnnotatedDataset) -> Path:
    """The deepest folder holding the dataset file and every image of ``dataset`` (recorded paths are below it)."""
    anchor = dataset.source if dataset.source.is_dir() else dataset.source.parent
    paths = [image.path for image in dataset.images]
    root = Path(os.path.commonpath([anchor, *paths])) if paths else anchor
    require_text_path(root)
    return root


def dataset_layout(spec: str | Path) -> str:
    """The manifest's ``layout`` of an annotated dataset: ``yolo``, ``coco`` or ``segmentation``."""
    suffix = Path(spec).suffix.lower()
    return YOLO if suffix in YAML_SUFFIXES else COCO if suffix in JSON_SUFFIXES else SEGMENTATION
