"""Where the channels are in an image-like sample."""
from __future__ import annotations


def channel_axis(shape: tuple[int, ...]) -> int | None:
    """The channel axis of a 3-D image sample (CHW → 0, HWC → 2), None for other ranks."""
    if len(shape) != 3:
        return None
    if shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return 0
    if shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        return 2
    return 0 if shape[0] <= shape[-1] else 2
