"""Frames: where a preprocessing puts the image in the model input, reported or measured, and boxes/masks mapped."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repcurate.data.geometry import Frame, frame_of, letterbox, probe_frame, resize


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1000, 333), (64, 48)])
def test_the_measured_frame_of_a_letterbox_equals_the_one_it_reports(size: tuple[int, int]) -> None:
    box = letterbox(320)
    measured, reported = probe_frame(box, *size), box.frame(*size)
    assert measured is not None and measured.kind == "letterbox"
    for field in ("scale_x", "scale_y", "pad_x", "pad_y", "input_width", "input_height"):
        assert getattr(measured, field) == pytest.approx(getattr(reported, field), abs=1e-9)


def test_a_stretching_resize_in_another_layout_and_normalisation_is_measured_per_axis() -> None:
    def hwc_standardised(image: Image.Image) -> np.ndarray:
        return (np.asarray(image.convert("RGB").resize((224, 160)), dtype=np.float32) - 127.0) / 128.0

    frame = probe_frame(hwc_standardised, 1000, 333)
    assert frame is not None and frame.kind == "resize"
    assert (frame.scale_x, frame.scale_y, frame.pad_x, frame.pad_y) == pytest.approx((0.224, 160 / 333, 0, 0))
    assert frame_of(resize(128), 64, 48) == Frame.stretch(64, 48, 128, 128)


def test_a_centre_crop_is_measured_to_a_pixel() -> None:
    def crop(image: Image.Image) -> np.ndarray:
        rgb = image.convert("RGB")
        scale = 256 / min(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BILINEAR)
        left, top = (rgb.width - 224) // 2, (rgb.height - 224) // 2
        return np.asarray(rgb.crop((left, top, left + 224, top + 224)), dtype=np.float32).transpose(2, 0, 1) / 255

    frame = probe_frame(crop, 1000, 333)
    assert frame is not None and frame.kind == "crop"
    assert frame.scale_x == pytest.approx(256 / 333, rel=0.01) and frame.pad_x == pytest.approx(-272, abs=2)


def test_boxes_round_trip_and_are_clipped_to_the_image() -> None:
    frame = letterbox(320).frame(640, 480)  # scale 0.5, 40 px of padding above and below
    boxes = np.array([[10.0, 20.0, 100.0, 200.0]])
    assert np.allclose(frame.to_input(boxes), [[5, 50, 50, 140]])
    assert np.allclose(frame.to_original(frame.to_input(boxes), 640, 480), boxes)
    assert np.allclose(frame.to_original(np.array([[-5.0, 0.0, 400.0, 300.0]]), 640, 480), [[0, 0, 640, 480]])


def test_a_mask_is_placed_as_the_image_was_with_the_padding_ignored() -> None:
    mask = np.zeros((480, 640), dtype=np.int64)
    mask[:, 320:] = 1
    placed = letterbox(32).frame(640, 480).mask_to_input(mask, (32, 32), 255)
    assert (placed[:4] == 255).all() and (placed[-4:] == 255).all()  # 4 rows of padding above and below
    assert (placed[4:28, :16] == 0).all() and (placed[4:28, 16:] == 1).all()


def test_an_output_that_is_not_image_shaped_has_no_measurable_frame() -> None:
    assert probe_frame(lambda image: np.zeros(10, dtype=np.float32), 64, 48) is None
