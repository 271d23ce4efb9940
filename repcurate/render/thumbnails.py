"""Small inline images for the HTML report: file thumbnails and model-input tensors as pictures."""
from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from repcurate.data.images import DecodeError
from repcurate.data.set_files import decode_verified
from repcurate.render.channels import channel_axis

#: Longest side of a set thumbnail in pixels: about 1–3 KB each, so a 1,000-image set stays small.
THUMBNAIL_SIDE = 64
#: JPEG quality of thumbnails (PNG is used instead when it is smaller, e.g. tiny greyscale images).
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Thumbnail:
    """One selected image as a data URI; ``source`` is ``file`` or ``tensor`` (with ``note`` saying why)."""

    uri: str
    path: str
    source: str
    note: str = ""


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def _greyscale(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        pixels = np.asarray(image)
        if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
            return Image.fromarray(np.ascontiguousarray(pixels[..., 0]), "L")
    return image


def encode_image(image: Image.Image, *, max_side: int | None = None, full_chroma: bool = False) -> str:
    """``image`` (shrunk to ``max_side``) as a data URI: the smaller of PNG and JPEG, no metadata.
    ``full_chroma``: JPEG without chroma subsampling (one-pixel coloured lines keep their colour).

    Pillow writes neither timestamps nor EXIF here, so the same pixels always give the same bytes.
    """
    image = _greyscale(image if image.mode in ("RGB", "L") else image.convert("RGB"))
    if max_side is not None and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    png, jpeg = io.BytesIO(), io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    image.save(jpeg, format="JPEG", quality=JPEG_QUALITY, **({"subsampling": 0} if full_chroma else {}))
    if len(jpeg.getvalue()) < len(png.getvalue()) and min(image.size) >= 16:
        return data_uri(jpeg.getvalue(), "image/jpeg")
    return data_uri(png.getvalue(), "image/png")


def tensor_to_image(tensor: np.ndarray) -> Image.Image:
    """A model-input sample as a picture: CHW or HWC, 1/3/4 channels (others: the first channel;
    extra leading axes: the first slice; 1-D: a strip), values stretched linearly from the tensor's min to its max (one stretch for all channels, so
    channel order and inversion stay visible)."""
    x = np.asarray(tensor, dtype=np.float64)
    while x.ndim > 3:  # a leading batch or time axis: its first slice
        x = x[0]
    if x.ndim == 3:
        axis = channel_axis(x.shape)
        x = np.moveaxis(x, axis if axis is not None else 0, -1)
        x = x[..., :3] if x.shape[-1] >= 3 else x[..., 0]
    elif x.ndim != 2:
        x = x.reshape(1, -1)
    x = np.nan_to_num(x)
    lo, hi = float(x.min()), float(x.max())
    scaled = np.full(x.shape, 128.0) if hi <= lo else (x - lo) * (255.0 / (hi - lo))
    pixels = np.ascontiguousarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L")


#: Why a sample's file is not shown, by the reason :func:`decode_verified` gives.
_NOT_SHOWN = {"content_changed": "the file changed since the build",
              "unreadable": "the file is not readable any more",
              "unsafe_path": "the recorded path leaves the set's root"}


def _one(root: Path, sample: dict[str, Any], max_side: int) -> tuple[Image.Image | None, str]:
    """The sample's file, only when its path stays below ``root`` and its content matches the fingerprint."""
    try:
        return decode_verified(root, sample["path"], sample.get("content_fingerprint"), size_bytes=sample.get("size_bytes"),
                               draft=(2 * max_side, 2 * max_side)).image, ""
    except DecodeError as exc:
        why = _NOT_SHOWN.get(exc.reason, f"the file no longer decodes ({exc.reason})")
        return None, f"{why}: showing the set's tensor"


def draw_boxes(image: Image.Image, boxes: Sequence[Sequence[float]], image_size: Sequence[int],
               colours: Sequence[str], *, max_side: int) -> Image.Image:
    """``image`` shrunk to ``max_side`` with its objects' boxes (``[class id, x0, y0, x1, y1]`` in pixels of the
    original ``image_size``) outlined one pixel wide in their class's colour (``colours[class id]``, cycled)."""
    image = image.convert("RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    width, height = image_size
    if not boxes or width <= 0 or height <= 0 or not colours:
        return image
    sx, sy = image.size[0] / width, image.size[1] / height
    pen = ImageDraw.Draw(image)
    for cls, x0, y0, x1, y1 in boxes:
        pen.rectangle([round(x0 * sx), round(y0 * sy), max(round(x0 * sx), round(x1 * sx) - 1),
                       max(round(y0 * sy), round(y1 * sy) - 1)], outline=colours[int(cls) % len(colours)], width=1)
    return image


def sample_thumbnails(manifest: dict[str, Any], tensors: Callable[[], np.ndarray], *,
                      max_side: int = THUMBNAIL_SIDE, workers: int = 2,
                      box_colours: Sequence[str] = ()) -> list[Thumbnail]:
    """A thumbnail per selected sample, in manifest order: the recorded file when it is still there
    and unchanged (content fingerprint), else the calibration tensor rendered (``tensors()`` is
    called only then). With ``box_colours`` (one per object class id), a file thumbnail of an annotated
    sample (``boxes`` and ``image_size`` recorded) shows its boxes in their class's colour; a tensor
    thumbnail does not (the preprocessing's frame is not known here)."""
    root = Path(manifest.get("root", "."))
    samples = manifest.get("samples", [])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(lambda s: _one(root, s, max_side), samples))
    thumbs = []
    for row, (sample, (image, note)) in enumerate(zip(samples, decoded)):
        if image is not None:
            boxed = bool(box_colours and sample.get("boxes") and sample.get("image_size"))
            if boxed:
                image = draw_boxes(image, sample["boxes"], sample["image_size"], box_colours, max_side=max_side)
            thumbs.append(Thumbnail(encode_image(image, max_side=max_side, full_chroma=boxed), sample["path"], "file"))
        else:
            picture = tensor_to_image(tensors()[row])
            thumbs.append(Thumbnail(encode_image(picture, max_side=max_side), sample["path"], "tensor", note))
    return thumbs
