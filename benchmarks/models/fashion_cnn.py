"""Fashion-MNIST CNN (PyTorch) for the benchmarks and the confirm closing table.

    repcurate build ... --model benchmarks/models/fashion_cnn.py:make_model \
        --preprocess benchmarks/models/fashion_cnn.py:preprocess

Three conv-BN-ReLU blocks (16, 32, 64 channels; 2×2 max-pool after the first two), global average
pool, linear head: 24k parameters, torch.fx-traceable, BatchNorm for MCT to fold. The weights
(``fashion_cnn.pt``, a state_dict beside this file) come from
``python benchmarks/fashion_mnist.py train --framework torch``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

WEIGHTS = Path(__file__).resolve().with_name("fashion_cnn.pt")
#: Mean and standard deviation of the Fashion-MNIST training pixels in [0, 1].
MEAN, STD = 0.286, 0.353
SIZE = 28


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey pixels (any leading shape, then H×W) → float32 ``(x / 255 − MEAN) / STD``.

    The training script normalises the idx arrays with this very function, so training, the
    PNG path (``preprocess``) and evaluation see bit-identical inputs.
    """
    x = np.asarray(pixels, dtype=np.float32) / np.float32(255.0)
    return (x - np.float32(MEAN)) / np.float32(STD)


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class FashionCNN(nn.Module):
    """(n, 1, 28, 28) normalised grey images → (n, 10) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(1, 16), nn.MaxPool2d(2),
            *_block(16, 32), nn.MaxPool2d(2),
            *_block(32, 64),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_model() -> nn.Module:
    """The trained model in eval mode (weights from ``fashion_cnn.pt`` beside this file)."""
    if not WEIGHTS.is_file():
        raise FileNotFoundError(f"{WEIGHTS}: missing; fix: python benchmarks/fashion_mnist.py train --framework torch")
    model = FashionCNN()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def preprocess(image: Image.Image) -> np.ndarray:
    """PIL image → float32 (1, 28, 28): grey, 28×28 (bilinear, only if needed), normalised."""
    grey = image.convert("L")
    if grey.size != (SIZE, SIZE):
        grey = grey.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return normalise(np.asarray(grey))[None]
