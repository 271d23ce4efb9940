"""Rules every annotation reader applies: image sizes, box validation, and the reasons a file is skipped.

One bad object in a file drops the whole **image** (its label file for YOLO, its annotations for COCO), with the
reason of the first bad object and its line or annotation id in the detail: an image whose labels are only
partly usable would be counted with too few objects by the quotas and scored wrongly by the metrics.

Box tolerance: a corner may lie up to ``EDGE_TOLERANCE`` of the image's width / height outside the image (the
1 % Ultralytics' own label check allows for rounding) and is clipped to it; farther out is ``box_outside_image``.
A box with no area after clipping is ``empty_box``.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from repcurate.data.annotations import Box
from repcurate.io.safe_read import UnsafeFile, cap, open_regular

#: Fraction of the image's width / height a box corner may lie outside the image before it is refused.
EDGE_TOLERANCE = 0.01
#: EXIF orientations that swap width and height (rotated by 90° or 270°, possibly mirrored).
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 274

#: Every reason an annotation reader gives for a skipped file (plus the image reasons ``not_an_image`` and
#: ``unreadable`` of :func:`repcurate.data.images.decode_image`, for an image whose header cannot be read).
REASONS = ("label_out_of_range", "box_outside_image", "empty_box", "missing_image", "unknown_class",
           "unparseable_label", "unsupported_label_format", "not_a_regular_file", "too_large", "outside_image_root")


class BadAnnotation(Exception):
    """One unusable object or line; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def displayed_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of the image as decoded (EXIF orientation applied), read from the header only.

    Raises :class:`BadAnnotation` (``missing_image``, ``not_an_image``, ``unreadable``) when there is no readable
    image, ``not_a_regular_file`` (a FIFO or device is never handed to Pillow) or ``too_large``."""
    try:
        handle = open_regular(path)
    except UnsafeFile as exc:
        raise BadAnnotation("missing_image" if exc.reason == "not_found" else
                            exc.reason if exc.reason == "not_a_regular_file" else "unreadable", exc.detail) from None
    try:
        if os.fstat(handle.fileno()).st_size > cap("image"):
            handle.close()
            raise BadAnnotation("too_large", f"over the {cap('image')}-byte limit for an image file")
        with handle, Image.open(handle) as img:
            width, height = img.size
            try:
                orientation = img.getexif().get(_EXIF_ORIENTATION)
            except Exception:  # noqa: BLE001 - a broken EXIF block must not hide the image; Pillow raises many types
                orientation = None
    except UnidentifiedImageError:
        raise BadAnnotation("not_an_image", "Pillow cannot identify this file as an image") from None
    except (OSError, ValueError) as exc:
        raise BadAnnotation("unreadable", f"cannot read the image header ({exc})") from None
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def checked_box(cls: int, x0: float, y0: float, x1: float, y1: float, width: int, height: int, *,
                crowd: bool = False) -> Box:
    """The box clipped to the image, or :class:`BadAnnotation` when it lies outside it or has no area."""
    dx, dy = EDGE_TOLERANCE * width, EDGE_TOLERANCE * height
    if x0 < -dx or y0 < -dy or x1 > width + dx or y1 > height + dy:
        raise BadAnnotation("box_outside_image", f"box ({x0:g}, {y0:g})-({x1:g}, {y1:g}) lies outside the "
                                                 f"{width}x{height} image")
    box = Box(cls, max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1), crowd)
    if box.x1 <= box.x0 or box.y1 <= box.y0:
        raise BadAnnotation("empty_box", f"box ({x0:g}, {y0:g})-({x1:g}, {y1:g}) has no area")
    return box
