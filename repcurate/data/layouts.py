"""The names of the layouts a scanned source can have (:attr:`~repcurate.data.scan.ScanResult.layout`, the
manifest's ``layout``), defined once: the scanners set them, tasks and commands compare with them."""
from __future__ import annotations

#: ``--layout auto``: a folder with class sub-folders is ``classes``, else ``flat``.
AUTO = "auto"
#: A class-per-folder tree: each top-level folder is a class.
CLASSES = "classes"
#: A folder (or list) of unlabelled images.
FLAT = "flat"
#: A CSV / JSONL / .txt list of images with a label column.
LIST = "list"
#: A YOLO ``data.yaml`` (boxes per image).
YOLO = "yolo"
#: A COCO ``instances_*.json`` (boxes per image).
COCO = "coco"
#: A segmentation folder (images/ + masks/).
SEGMENTATION = "segmentation"

#: The layouts ``--layout`` takes for a folder.
FOLDER_LAYOUTS = (CLASSES, FLAT)
#: The layouts of annotated datasets, whose records carry boxes or a mask.
ANNOTATED_LAYOUTS = (YOLO, COCO, SEGMENTATION)
#: Every layout a scan can report.
KNOWN_LAYOUTS = (*FOLDER_LAYOUTS, LIST, *ANNOTATED_LAYOUTS)
