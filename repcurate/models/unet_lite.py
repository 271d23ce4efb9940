"""A U-Net-lite semantic segmenter for the composites of :mod:`repcurate.example_detection`.

    repcurate build ... --model repcurate.models.unet_lite:make_model --preprocess repcurate.models.unet_lite:preprocess

Network (:class:`UNetLite`): four conv-BN-SiLU encoder stages (strides 2, 4, 8, 16), three decoder stages
(nearest upsample + concat of the skip connection + conv), a 1×1 classifier at stride 2 and a bilinear
upsample back to the input size. fx-traceable, no ``nn.Linear``. ``forward``: (n, 3, 128, 128) RGB in [0, 1]
→ logits (n, :data:`NUM_CLASSES`, 128, 128); ``argmax`` over dim 1 gives the mask's values: 0 = background,
k = class k − 1 of :data:`repcurate.example_detection.CLASSES`.

Weights: ``unet_lite.pt`` beside this file (a state_dict), from ``python benchmarks/train_segmenter.py``
(see BENCHMARKS.md for the command, time and mIoU).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from repcurate.models.common import load_trained, rgb_unit_chw

WEIGHTS = Path(__file__).resolve().with_name("unet_lite.pt")
#: Background + the six object classes.
NUM_CLASSES = 7
IMAGE_SIZE = 128


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv (no bias) + BatchNorm + SiLU, 'same' padding."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class UNetLite(nn.Module):
    """(n, 3, 128, 128) RGB in [0, 1] → (n, NUM_CLASSES, 128, 128) logits."""

    def __init__(self, num_classes: int = NUM_CLASSES, widths: Sequence[int] = (16, 32, 48, 64)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.enc1 = nn.Sequential(conv(3, w1, 2), conv(w1, w1))
        self.enc2 = nn.Sequential(conv(w1, w2, 2), conv(w2, w2))
        self.enc3 = nn.Sequential(conv(w2, w3, 2), conv(w3, w3))
        self.enc4 = nn.Sequential(conv(w3, w4, 2), conv(w4, w4))
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec3 = conv(w4 + w3, w3)
        self.dec2 = conv(w3 + w2, w2)
        self.dec1 = conv(w2 + w1, w1)
        self.classifier = nn.Conv2d(w1, num_classes, 1)
        self.to_input_size = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2 = self.enc1(x)
        s4 = self.enc2(s2)
        s8 = self.enc3(s4)
        s16 = self.enc4(s8)
        d8 = self.dec3(torch.cat([self.upsample(s16), s8], dim=1))
        d4 = self.dec2(torch.cat([self.upsample(d8), s4], dim=1))
        d2 = self.dec1(torch.cat([self.upsample(d4), s2], dim=1))
        return self.to_input_size(self.classifier(d2))


def make_model() -> UNetLite:
    """The trained segmenter in eval mode (weights from ``unet_lite.pt`` beside this file)."""
    return load_trained(UNetLite(), WEIGHTS, "benchmarks/train_segmenter.py")


def preprocess(image: Image.Image) -> np.ndarray:
    """PIL image → float32 (3, 128, 128) RGB in [0, 1] (bilinear resize only if the size differs)."""
    return rgb_unit_chw(image, IMAGE_SIZE)
