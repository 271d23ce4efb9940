"""Where a preprocessing puts the original image inside the model input, so boxes and masks meet in one frame.

A detector's boxes come out in pixels of the model input; ground truth is in pixels of the original image. How one
maps to the other depends on the preprocessing: a plain resize stretches each axis, a letterbox (Ultralytics,
MCT's YOLO tutorial, Ultralytics' IMX export) scales both axes by one ratio and pads, a centre crop scales and cuts.
A :class:`Frame` is that mapping, ``x_input = x_original · scale_x + pad_x`` (and likewise for y).

Where the frame comes from, in order:

1. the preprocessing says so: a callable with a ``frame(width, height) -> Frame`` method, as :func:`letterbox` and
   :func:`resize` here (``--preprocess repcurate.data.geometry:letterbox_640`` on the command line);
2. otherwise it is **measured** (:func:`probe_frame`): the preprocessing runs on four synthetic images of the
   original size (black, white, a horizontal and a vertical ramp). Outputs that differ between black and white are
   the image's content (the rest is padding); the ramps tell which original column / row each content element came
   from, whatever the normalisation or channel order, and a straight-line fit gives scale and offset per axis.
   This recovers resize, letterbox and centre-crop frames of ordinary preprocessings to a fraction of a pixel;
3. when the measurement cannot read the output (not an image-shaped array, or not affine in the pixel values), the
   frame is the stretch of the whole image onto the input (``None`` from :func:`probe_frame`), with a warning.

Scorers map detections back to the original image with :meth:`Frame.to_original` (clipped to the image, as
Ultralytics' ``scale_boxes`` + ``clip_boxes``) and masks into the model input with :meth:`Frame.mask_to_input`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

#: The grey Ultralytics pads letterboxed images with.
LETTERBOX_GREY = 114
#: Content elements within this fraction of each end of an axis are left out of the ramp fit (resampling edges).
_EDGE_SHARE = 0.1
#: A fitted scale this far (relative) from the content extent's marks a crop: the fit is used instead.
_CROP_TOLERANCE = 0.02


@dataclass(frozen=True)
class Frame:
    """Original-image pixels → model-input pixels: ``x · scale_x + pad_x``, ``y · scale_y + pad_y``; the input is
    ``input_width × input_height``."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    input_width: int
    input_height: int
    kind: str = "resize"

    @classmethod
    def stretch(cls, width: int, height: int, input_width: int, input_height: int) -> Frame:
        """The whole ``width × height`` image resized onto the input (each axis scaled on its own)."""
        return cls(input_width / width, input_height / height, 0.0, 0.0, input_width, input_height, "resize")

    def to_original(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """``(k, 4)`` xyxy boxes in input pixels → original-image pixels, clipped to the ``width × height`` image."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        out = np.empty_like(boxes)
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale_x
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale_y
        out[:, [0, 2]] = out[:, [0, 2]].clip(0.0, float(width))
        out[:, [1, 3]] = out[:, [1, 3]].clip(0.0, float(height))
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """``(k, 4)`` xyxy boxes in original pixels → input pixels (not clipped)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        out = np.empty_like(boxes)
        out[:, [0, 2]] = boxes[:, [0, 2]] * self.scale_x + self.pad_x
        out[:, [1, 3]] = boxes[:, [1, 3]] * self.scale_y + self.pad_y
        return out

    def mask_to_input(self, mask: np.ndarray, hw: tuple[int, int], fill: int) -> np.ndarray:
        """A class-id mask of the original image, placed in an output of ``(H, W)`` = ``hw`` (nearest neighbour;
        output pixels outside the image — letterbox padding — are ``fill``)."""
        height, width = hw
        ys = (np.arange(height) + 0.5) * (self.input_height / height)
        xs = (np.arange(width) + 0.5) * (self.input_width / width)
        src_y = np.floor((ys - self.pad_y) / self.scale_y).astype(np.int64)
        src_x = np.floor((xs - self.pad_x) / self.scale_x).astype(np.int64)
        inside_y = (src_y >= 0) & (src_y < mask.shape[0])
        inside_x = (src_x >= 0) & (src_x < mask.shape[1])
        out = np.full((height, width), fill, dtype=np.int64)
        rows, cols = np.flatnonzero(inside_y), np.flatnonzero(inside_x)
        out[np.ix_(rows, cols)] = mask[np.ix_(src_y[rows], src_x[cols])]
        return out


def _letterbox_geometry(width: int, height: int, size: tuple[int, int], scaleup: bool) -> tuple[int, int, int, int]:
    """(new_width, new_height, left, top) of a letterbox of a ``width × height`` image into ``size`` = (H, W)."""
    ratio = min(size[0] / height, size[1] / width)
    if not scaleup:
        ratio = min(ratio, 1.0)
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    left = round((size[1] - new_w) / 2 - 0.1)
    top = round((size[0] - new_h) / 2 - 0.1)
    return new_w, new_h, left, top


def _as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _to_sample(pixels: np.ndarray, channels_last: bool) -> np.ndarray:
    array = pixels.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(array if channels_last else array.transpose(2, 0, 1))


@dataclass(frozen=True)
class Letterbox:
    """Preprocessing: RGB, scaled by one ratio to fit ``size`` (H, W), centred on :data:`LETTERBOX_GREY` padding,
    values ``/ 255`` as float32, CHW (``channels_last``: HWC) — the frame Ultralytics models are trained and exported in."""

    size: tuple[int, int]
    channels_last: bool = False
    scaleup: bool = True

    def __call__(self, image: Image.Image) -> np.ndarray:
        return _to_sample(self.pixels(image), self.channels_last)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """The letterboxed image as uint8 ``(H, W, 3)`` (what :meth:`__call__` divides by 255)."""
        rgb = image.convert("RGB")
        new_w, new_h, left, top = _letterbox_geometry(rgb.width, rgb.height, self.size, self.scaleup)
        resized = rgb if (new_w, new_h) == rgb.size else rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
        canvas = np.full((self.size[0], self.size[1], 3), LETTERBOX_GREY, dtype=np.uint8)
        canvas[top:top + new_h, left:left + new_w] = np.asarray(resized)
        return canvas

    def frame(self, width: int, height: int) -> Frame:
        new_w, new_h, left, top = _letterbox_geometry(width, height, self.size, self.scaleup)
        return Frame(new_w / width, new_h / height, float(left), float(top), self.size[1], self.size[0], "letterbox")


@dataclass(frozen=True)
class Resize:
    """Preprocessing: RGB, resized (bilinear) to ``size`` (H, W) without keeping the aspect ratio, ``/ 255`` as
    float32, CHW (``channels_last``: HWC)."""

    size: tuple[int, int]
    channels_last: bool = False

    def __call__(self, image: Image.Image) -> np.ndarray:
        rgb = image.convert("RGB")
        if rgb.size != (self.size[1], self.size[0]):
            rgb = rgb.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return _to_sample(np.asarray(rgb), self.channels_last)

    def frame(self, width: int, height: int) -> Frame:
        return Frame.stretch(width, height, self.size[1], self.size[0])


def letterbox(size: int | tuple[int, int], *, channels_last: bool = False, scaleup: bool = True) -> Letterbox:
    """A letterbox preprocessing to ``size`` (an int: square) that reports its :class:`Frame`."""
    return Letterbox(_as_hw(size), channels_last=channels_last, scaleup=scaleup)


def resize(size: int | tuple[int, int], *, channels_last: bool = False) -> Resize:
    """A stretching resize preprocessing to ``size`` (an int: square) that reports its :class:`Frame`."""
    return Resize(_as_hw(size), channels_last=channels_last)


#: Ready-made preprocessings for ``--preprocess repcurate.data.geometry:NAME`` (Ultralytics' default 640 px).
letterbox_640 = letterbox(640)
letterbox_320 = letterbox(320)
resize_640 = resize(640)

#: ``letterbox_<N>`` / ``letterbox_<H>x<W>`` (and ``resize_...``): the preprocessing at any size, by name.
_SIZED = re.compile(r"(letterbox|resize)_(\d{1,5})(?:x(\d{1,5}))?")


def sized_preprocessing(name: str) -> Letterbox | Resize | None:
    """The preprocessing a ``letterbox_<N>`` / ``letterbox_<H>x<W>`` / ``resize_...`` name stands for, or None."""
    match = _SIZED.fullmatch(name)
    if match is None or int(match[2]) < 1 or (match[3] is not None and int(match[3]) < 1):
        return None
    size = (int(match[2]), int(match[3] or match[2]))
    return letterbox(size) if match[1] == "letterbox" else resize(size)


def __getattr__(name: str) -> Any:
    """``repcurate.data.geometry:letterbox_416`` and the like load as specs (a set records its model's own size)."""
    found = sized_preprocessing(name)
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return found


def _fit_axis(index: np.ndarray, source: np.ndarray, extent: tuple[int, int], original: int) -> tuple[float, float]:
    """(scale, pad) of one axis: input index ``i`` shows original coordinate ``(i + 0.5 - pad) / scale``."""
    first, last = extent
    extent_scale = (last - first + 1) / original
    span = last - first + 1
    margin = int(span * _EDGE_SHARE)
    keep = (index >= first + margin) & (index <= last - margin)
    if keep.sum() >= 2 and np.ptp(index[keep]) > 0:
        slope, intercept = np.polyfit(index[keep] + 0.5, source[keep], 1)
        if slope > 0:
            fitted_scale = 1.0 / slope
            if abs(fitted_scale - extent_scale) > _CROP_TOLERANCE * extent_scale:
                return fitted_scale, -intercept * fitted_scale  # a crop: the content fills the axis, the fit knows
    return extent_scale, float(first)


def probe_frame(preprocess: Callable[[Image.Image], Any], width: int, height: int) -> Frame | None:
    """Measure the :class:`Frame` of ``preprocess`` for a ``width × height`` image (see the module text); ``None``
    when its output cannot be read as an image-shaped array that is affine in the input pixel values."""
    from repcurate.data.preprocess import to_numpy_sample

    def run(pixels: np.ndarray) -> np.ndarray:
        return to_numpy_sample(preprocess(Image.fromarray(pixels, "RGB"))).astype(np.float64)

    xs = np.round(255.0 * (np.arange(width) + 0.5) / width).astype(np.uint8)
    ys = np.round(255.0 * (np.arange(height) + 0.5) / height).astype(np.uint8)
    try:
        black = run(np.zeros((height, width, 3), np.uint8))
        white = run(np.full((height, width, 3), 255, np.uint8))
        ramp_x = run(np.broadcast_to(xs[None, :, None], (height, width, 3)).copy())
        ramp_y = run(np.broadcast_to(ys[:, None, None], (height, width, 3)).copy())
    except Exception:  # noqa: BLE001 - a preprocessing that fails on a synthetic image has no measurable frame
        return None
    if not (black.shape == white.shape == ramp_x.shape == ramp_y.shape) or black.ndim not in (2, 3):
        return None
    delta = white - black
    content = np.abs(delta) > 1e-6 * max(float(np.abs(delta).max()), 1e-12)
    if not content.any():
        return None
    safe = np.where(content, delta, 1.0)
    source_x = ((ramp_x - black) / safe) * width - 0.5  # the original column each element shows
    source_y = ((ramp_y - black) / safe) * height - 0.5
    axes = [a for a in range(black.ndim) if black.shape[a] > 1]
    if len(axes) < 2:
        return None

    def variation(values: np.ndarray, axis: int) -> float:
        diffs = np.abs(np.diff(np.where(content, values, np.nan), axis=axis))
        return float(np.nanmean(diffs)) if np.isfinite(diffs).any() else 0.0

    axis_x = max(axes, key=lambda a: variation(source_x, a))
    axis_y = max((a for a in axes if a != axis_x), key=lambda a: variation(source_y, a))

    def per_index(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        moved, mask = np.moveaxis(values, axis, 0), np.moveaxis(content, axis, 0)
        flat, flat_mask = moved.reshape(moved.shape[0], -1), mask.reshape(mask.shape[0], -1)
        present = flat_mask.any(axis=1)
        where = np.flatnonzero(present)
        means = np.array([flat[i][flat_mask[i]].mean() for i in where])
        return where, means, (int(where[0]), int(where[-1]))

    index_x, col_x, extent_x = per_index(source_x, axis_x)
    index_y, col_y, extent_y = per_index(source_y, axis_y)
    if not (np.isfinite(col_x).all() and np.isfinite(col_y).all()):
        return None
    scale_x, pad_x = _fit_axis(index_x, col_x, extent_x, width)
    scale_y, pad_y = _fit_axis(index_y, col_y, extent_y, height)
    if not all(math.isfinite(v) and v > 0 for v in (scale_x, scale_y)):
        return None
    input_w, input_h = black.shape[axis_x], black.shape[axis_y]
    padded = extent_x != (0, input_w - 1) or extent_y != (0, input_h - 1)
    stretched = abs(scale_x * width - input_w) < 1 and abs(scale_y * height - input_h) < 1
    kind = "letterbox" if padded else ("resize" if stretched else "crop")
    return Frame(scale_x, scale_y, pad_x, pad_y, input_w, input_h, kind)


def frame_of(preprocess: Any, width: int, height: int) -> Frame | None:
    """The :class:`Frame` a preprocessing (a callable, or a :class:`~repcurate.data.preprocess.Preprocessor`)
    gives a ``width × height`` image: its own ``frame`` method when it has one, else :func:`probe_frame`."""
    fn = getattr(preprocess, "fn", preprocess)
    own = getattr(fn, "frame", None)
    if callable(own):
        result = own(width, height)
        return result if isinstance(result, Frame) else None
    return probe_frame(fn, width, height)
