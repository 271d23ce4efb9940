"""A real image folder from data that ships with scikit-learn: the UCI handwritten digits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: Digits are 8×8 with values 0..16; they are written upscaled so they look like small photos.
DIGIT_IMAGE_SIZE = 32


def digit_to_image(pixels: np.ndarray, *, size: int = DIGIT_IMAGE_SIZE) -> Image.Image:
    """One 8×8 digit (values 0..16) as an 8-bit greyscale image of ``size``×``size`` pixels."""
    grey = np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)
    return Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.BILINEAR)


def write_digits_folder(directory: str | Path, *, per_class: dict[int, int] | None = None,
                        offset: int = 0, size: int = DIGIT_IMAGE_SIZE) -> dict[str, int]:
    """Write scikit-learn's digits as ``directory/<digit>/<index>.png``; returns images per class.

    ``per_class`` caps each digit's count (e.g. a long-tailed distribution); ``offset`` skips that
    many images of each class first, so disjoint folders (train / eval) can be made.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    directory = Path(directory)
    written: dict[str, int] = {}
    seen: dict[int, int] = {}
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        label = int(target)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= offset:
            continue
        limit = None if per_class is None else per_class.get(label, 0)
        if limit is not None and written.get(str(label), 0) >= limit:
            continue
        folder = directory / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        digit_to_image(pixels, size=size).save(folder / f"{index:04d}.png")
        written[str(label)] = written.get(str(label), 0) + 1
    return dict(sorted(written.items()))
