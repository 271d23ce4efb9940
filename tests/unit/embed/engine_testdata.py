"""A tiny user model + preprocessing as a ``file.py`` spec (so Ray workers load it the way the CLI names it), and a
digits folder with a corrupt file, shared by the engine tests."""
from __future__ import annotations

from pathlib import Path

from repcurate.example_data import write_digits_folder

MODEL_SOURCE = '''
import numpy as np
import torch
import torch.nn as nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


def preprocess(image):
    return np.asarray(image.convert("L").resize((12, 12)), np.float32)[None] / 255.0
'''


def write_engine_project(work: Path, per_class: int = 6) -> tuple[Path, str, str]:
    """``work/train`` (digits 0-2, ``per_class`` each, plus ``1/broken.png``) and ``work/tiny_model.py``; returns
    the folder and the model and preprocess specs."""
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(3), per_class))
    (work / "train" / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (work / "tiny_model.py").write_text(MODEL_SOURCE, encoding="utf-8")
    return work / "train", f"{work / 'tiny_model.py'}:make_model", f"{work / 'tiny_model.py'}:preprocess"
