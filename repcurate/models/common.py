"""What the bundled example models share: loading their committed weights, and their input pipeline."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

M = TypeVar("M", bound=nn.Module)


def load_trained(model: M, weights: Path, trainer: str) -> M:
    """``model`` with the state_dict in ``weights``, in eval mode (``trainer``: the script that writes them)."""
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing; fix: python {trainer}")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def rgb_unit_chw(image: Image.Image, size: int) -> np.ndarray:
    """PIL image → float32 (3, size, size) RGB in [0, 1] (bilinear resize only if the size differs)."""
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0))
