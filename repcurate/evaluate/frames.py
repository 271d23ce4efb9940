"""Where the preprocessing puts an eval image in the model input (boxes and masks are scored through it)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from repcurate.data import geometry
from repcurate.data.geometry import Frame
from repcurate.errors import InputError

log = logging.getLogger("repcurate")


def frames_of(preprocessor: Any, input_hw: tuple[int, int] | None) -> Callable[[int, int], Frame]:
    """``frame_of(width, height)`` of ``preprocessor`` (its own or measured, see :mod:`repcurate.data.geometry`),
    remembered per image size; where it cannot be measured, the stretch onto ``input_hw`` (logged once)."""
    known: dict[tuple[int, int], Frame] = {}

    def frame_of(width: int, height: int) -> Frame:
        if (width, height) not in known:
            frame = geometry.frame_of(preprocessor, width, height)
            if frame is None:
                if input_hw is None:
                    raise InputError("the preprocessing's output is not an image-shaped array, so boxes and masks "
                                     "cannot be placed in it; fix: give the preprocessing a frame(width, height) method")
                if not known:
                    log.warning("could not measure where the preprocessing puts the image in the model input; boxes and "
                                "masks are scored as if it resized the whole image (fix: give it a frame(width, height) "
                                "method, see repcurate.data.geometry)")
                frame = Frame.stretch(width, height, input_hw[1], input_hw[0])
            known[(width, height)] = frame
        return known[(width, height)]

    return frame_of
