"""Decode any supported image file to canonical RGB uint8, or say precisely why not."""
from __future__ import annotations

import errno
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repcurate.io.safe_read import UnsafeFile, cap, open_regular

#: File extensions recognised as images (matched case-insensitively).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)

#: Pillow's own decompression-bomb limit (≈ 89.5 Mpx): larger images are refused, not decoded.
DEFAULT_MAX_PIXELS: int = 89_478_485

#: Background that transparent pixels are composited onto.
BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)

# Pillow prints a raw DecompressionBombWarning on stderr when it reads the header of an image above its
# pixel limit; :func:`decode_image` refuses such images itself (reason ``decompression_bomb``), so the
# warning only adds noise. A process-wide filter for that one warning from Pillow, because decoding runs
# in threads and ``warnings.catch_warnings`` is not thread-safe.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module=r"PIL\.Image")


class DecodeError(Exception):
    """A file could not be decoded; ``reason`` is a stable snake_case code, ``detail`` the cause."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedImage:
    """An image as canonical RGB plus what it was on disk."""

    image: Image.Image
    source_mode: str
    source_format: str | None


def is_image_path(path: Path) -> bool:
    """True when the file name has a supported image extension (any letter case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _sixteen_bit_to_rgb(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer or float single-channel image to 8-bit grey, then RGB."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0.0, 255.0)
        grey = np.rint(arr).astype(np.uint8)
    else:
        # 16-bit data (I;16*, or I holding 0..65535) → 8 bit by rounding value/257.
        arr = np.clip(arr.astype(np.int64), 0, 65535)
        grey = ((arr + 128) // 257).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited onto white."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I") or mode == "F":
        return _sixteen_bit_to_rgb(img)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    ) or (mode in ("L", "RGB") and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND_RGB + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(path: Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: tuple[int, int] | None = None) -> DecodedImage:
    """Decode ``path`` (a file, or the file's bytes already read) to an RGB uint8 PIL image with EXIF orientation applied.

    GIF and other animated formats give their first frame. ``draft`` (width, height) lets JPEG
    decode at a reduced scale no smaller than that (for thumbnails; never for model input). Raises
    :class:`DecodeError` with a reason code: ``unreadable``, ``not_a_regular_file``, ``too_large``, ``empty_file``, ``not_an_image``,
    ``decompression_bomb``, ``truncated`` or ``corrupt``.
    """
    try:
        handle: IO[bytes]
        if isinstance(path, bytes):
            size, handle = len(path), io.BytesIO(path)
        else:
            handle = open_regular(path)  # a FIFO or device is never read (it would block or never end)
            size = os.fstat(handle.fileno()).st_size
    except UnsafeFile as exc:
        if exc.reason == "not_found":
            raise DecodeError("unreadable", os.strerror(errno.ENOENT)) from None
        raise DecodeError(exc.reason, exc.detail) from None
    except OSError as exc:
        raise DecodeError("unreadable", exc.strerror or str(exc)) from None
    if size == 0:
        handle.close()
        raise DecodeError("empty_file", "the file has 0 bytes")
    if size > cap("image"):
        handle.close()
        raise DecodeError("too_large", f"{size} bytes, over the {cap('image')}-byte limit for an image file "
                                       "(raise it with REPCURATE_MAX_IMAGE_BYTES=BYTES)")
    with handle:
        try:
            # Pillow warns above its limit (silenced above); the size check below refuses such images.
            img: Image.Image = Image.open(handle)
            width, height = img.size
            if width * height > max_pixels:
                raise DecodeError(
                    "decompression_bomb",
                    f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}",
                )
            source_mode, source_format = img.mode, img.format
            if draft is not None and img.format == "JPEG":
                img.draft("RGB", draft)
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
            rgb.load()
        except DecodeError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecodeError("decompression_bomb", str(exc)) from None
        except UnidentifiedImageError:
            raise DecodeError("not_an_image", "Pillow cannot identify this file as an image") from None
        except OSError as exc:
            text = str(exc)
            if "truncated" in text.lower() or "broken data stream" in text:
                raise DecodeError("truncated", text) from None
            raise DecodeError("corrupt", text) from None
        except (ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError) as exc:
            raise DecodeError("corrupt", f"{type(exc).__name__}: {exc}") from None
    return DecodedImage(image=rgb, source_mode=source_mode, source_format=source_format)
