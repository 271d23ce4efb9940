"""The curated images as an Ultralytics dataset: ``data.yaml`` + ``images.txt`` (``build --emit yolo``).

``yolo export format=imx data=<set>/data.yaml`` (and every other Ultralytics command taking ``data=``) then
calibrates / validates on exactly the curated images: ``path`` is the set's absolute folder, ``train`` and ``val``
both name ``images.txt``, one absolute image path per line, in the set's sample order. Ultralytics finds each
image's labels itself (``…/images/…`` → ``…/labels/….txt``), so a set curated from a YOLO dataset keeps its
labels; images without labels are background images to it. Format: https://docs.ultralytics.com/datasets/detect/
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from repcurate.io.atomic import write_text_atomic

DATA_YAML = "data.yaml"
IMAGE_LIST = "images.txt"


def yolo_view_files(set_dir: Path, image_paths: Sequence[Path], names: Sequence[str]) -> dict[str, bytes]:
    """``{file name: bytes}`` of the view for a set that lives (or will live) at ``set_dir``.

    ``names``: class names, index = class id (a YOLO / COCO dataset's names, or a classification set's class
    folders); at least one name is written (``object``) because Ultralytics requires ``names``."""
    import yaml

    set_dir = Path(set_dir).resolve()
    listing = "".join(f"{Path(p).resolve().as_posix()}\n" for p in image_paths)
    data = {"path": set_dir.as_posix(), "train": IMAGE_LIST, "val": IMAGE_LIST,
            "names": {i: str(name) for i, name in enumerate(names or ["object"])}}
    header = ("# Written by repcurate build --emit yolo: the curated images as an Ultralytics dataset.\n"
              f"# Use: yolo export model=<model.pt> format=imx data={(set_dir / DATA_YAML).as_posix()}\n")
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return {DATA_YAML: text.encode("utf-8"), IMAGE_LIST: listing.encode("utf-8")}


def write_yolo_view(set_dir: Path, image_paths: Sequence[Path], names: Sequence[str]) -> Path:
    """Write the view's files into ``set_dir`` (an existing folder), each atomically, the list first so the
    ``data.yaml`` never names a missing list; returns the ``data.yaml`` path."""
    set_dir = Path(set_dir)
    files = yolo_view_files(set_dir, image_paths, names)
    for name in (IMAGE_LIST, DATA_YAML):
        write_text_atomic(set_dir / name, files[name].decode("utf-8"))
    return set_dir / DATA_YAML
