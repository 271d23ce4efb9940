"""Wrong input pipelines for the Fashion-MNIST CNN, planted by ``benchmarks/quality.py``.

Each returns what ``fashion_cnn.preprocess`` returns — float32 (1, 28, 28) — but not normalised the
way the model was trained: the mistakes a calibration script makes when it re-implements the
evaluation pipeline by hand.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def _grey(image: Image.Image) -> np.ndarray:
    grey = image.convert("L")
    if grey.size != (28, 28):
        grey = grey.resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float32)


def unnormalised_0_1(image: Image.Image) -> np.ndarray:
    """Scaled to 0..1 but the mean/std normalisation forgotten."""
    return (_grey(image) / np.float32(255.0))[None]


def unnormalised_0_255(image: Image.Image) -> np.ndarray:
    """Raw pixel values 0..255."""
    return _grey(image)[None]


def inverted(image: Image.Image) -> np.ndarray:
    """Normalised, but with inverted intensities (white-on-black vs black-on-white)."""
    x = (np.float32(255.0) - _grey(image)) / np.float32(255.0)
    return ((x - np.float32(0.286)) / np.float32(0.353))[None]
