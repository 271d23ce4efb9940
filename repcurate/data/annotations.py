"""Object annotations of detection and segmentation datasets, in one form whatever file they came from.

YOLO ``data.yaml`` / label ``.txt`` files, COCO ``instances_*.json`` and image + mask folders are all read into
:class:`AnnotatedImage` records: boxes in **pixels of the original image** (``x0, y0, x1, y1``, corners, x
to the right, y down) with a class id from the dataset's own class list, and for segmentation the path of the
mask PNG whose pixel values are class ids. Readers live beside this module; tasks, quotas and metrics consume
only these types, never a file format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: COCO's object-size thresholds (area in pixels²): small < 32², medium < 96², large otherwise.
SMALL_AREA = 32.0**2
MEDIUM_AREA = 96.0**2


@dataclass(frozen=True)
class Box:
    """One object: class id and corners in pixels of the original image.

    ``crowd``: a COCO ``iscrowd`` region (a group of objects annotated as one); kept so evaluators can ignore
    detections inside it, but not counted as an instance by the object quotas."""

    cls: int
    x0: float
    y0: float
    x1: float
    y1: float
    crowd: bool = False

    @property
    def area(self) -> float:
        """Box area in pixels²."""
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    @property
    def size(self) -> str:
        """COCO's size bucket of the box: ``small``, ``medium`` or ``large``."""
        if self.area < SMALL_AREA:
            return "small"
        return "medium" if self.area < MEDIUM_AREA else "large"


@dataclass(frozen=True)
class AnnotatedImage:
    """An image with its objects (none: a background image) and, for segmentation, its mask file."""

    path: Path
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    mask: Path | None = None

    @property
    def is_background(self) -> bool:
        """True when the image holds no object (and has no mask)."""
        return not self.boxes and self.mask is None

    @property
    def classes(self) -> tuple[int, ...]:
        """The distinct class ids of the image's boxes, sorted."""
        return tuple(sorted({box.cls for box in self.boxes}))


@dataclass(frozen=True)
class SkippedAnnotation:
    """A file the reader could not use, with a machine-readable reason and a human detail.

    Reasons: ``label_out_of_range``, ``box_outside_image``, ``empty_box``, ``missing_image``,
    ``unknown_class``, ``unparseable_label`` (and the image reasons of :mod:`repcurate.data.scan`)."""

    path: Path
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class AnnotatedDataset:
    """One split of a detection / segmentation dataset: class names (index = class id), images, skipped files."""

    source: Path
    split: str
    names: tuple[str, ...]
    images: tuple[AnnotatedImage, ...]
    skipped: tuple[SkippedAnnotation, ...] = field(default=())
