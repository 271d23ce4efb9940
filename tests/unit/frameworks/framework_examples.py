"""Small real models for every registered framework, named by spec as a user would name them: a digits CNN
(one output), a two-head variant returning a tuple, and one returning a dict. A new framework adds its
example here; the contract tests refuse a registered framework without one."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TORCH_SOURCE = '''
import torch
import torch.nn as nn


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.features(x))


class TupleCNN(DigitsCNN):
    def __init__(self):
        super().__init__()
        self.aux = nn.Linear(16, 3)

    def forward(self, x):
        f = self.features(x)
        return self.head(f), self.aux(f)


class DictCNN(TupleCNN):
    def forward(self, x):
        f = self.features(x)
        return {"logits": self.head(f), "aux": self.aux(f)}


def single():
    return DigitsCNN().eval()


def pair():
    return TupleCNN().eval()


def named():
    return DictCNN().eval()
'''

KERAS_SOURCE = '''
import tensorflow as tf


def _body():
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = tf.keras.layers.Dense(16, activation="relu", name="hidden")(x)
    return inputs, x


def single():
    inputs, x = _body()
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10, name="head")(x))


def pair():
    inputs, x = _body()
    return tf.keras.Model(inputs, [tf.keras.layers.Dense(10, name="head")(x), tf.keras.layers.Dense(3, name="aux")(x)])


def named():
    inputs, x = _body()
    return tf.keras.Model(inputs, {"logits": tf.keras.layers.Dense(10, name="head")(x),
                                   "aux": tf.keras.layers.Dense(3, name="aux")(x)})
'''


@dataclass
class Example:
    """One framework's example models as specs, and what the contract expects of them."""

    single: str  # a spec the framework's loader or a factory resolves: one (n, 10) output
    pair: str  # returns a tuple / list of (n, 10) and (n, 3)
    named: str  # returns a dict {"logits": (n, 10), "aux": (n, 3)}
    default_feature_dim: int  # width of the last Linear/Dense layer's input
    named_layer: str  # a layer whose output can be captured by name
    kernel_weights: int  # how many kernel weights the single model has
    #: Per spec attribute, the output shapes after the batch axis (default: ``(10,)``, and ``(3,)`` for pair / named).
    output_shapes: dict[str, list[tuple[int, ...]]] | None = None
    #: How many kernel layer types the single model has (a convolution and a dense layer by default).
    kernel_kinds: int = 2
    #: Whether the single model concatenates tensors (MCT's graph lists its concatenations).
    concatenates: bool = False
    #: Layers the single model calls several times per batch (name → calls), e.g. a pooling applied thrice.
    repeated_layers: dict[str, int] | None = None
    #: The batch the models take (default: the digits at 8×8, :func:`digits_batch`).
    batch: Callable[[], np.ndarray] | None = None


def digits_batch(channels_last: bool, n: int = 24) -> np.ndarray:
    """Real images: the first ``n`` of scikit-learn's 8×8 digits, scaled to [0, 1], NCHW or NHWC float32."""
    from sklearn.datasets import load_digits

    x = (load_digits().images[:n] / 16.0).astype(np.float32)
    return x[..., None] if channels_last else x[:, None]


def torch_example(tmp: Path) -> Example:
    path = tmp / "torch_models.py"
    path.write_text(TORCH_SOURCE)
    return Example(f"{path}:single", f"{path}:pair", f"{path}:named", 16, "features.0", 1 * 4 * 9 + 16 * 10)


def keras_example(tmp: Path) -> Example:
    import importlib.util

    path = tmp / "keras_models.py"
    path.write_text(KERAS_SOURCE)
    spec = importlib.util.spec_from_file_location("keras_models_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    saved = tmp / "digits.keras"
    module.single().save(saved)  # the .keras file spec the framework loads itself
    return Example(str(saved), f"{path}:pair", f"{path}:named", 16, "conv", 9 * 4 + 4 * 16 + 16 * 10)


ULTRALYTICS_FACTORY = '''
from ultralytics.nn.tasks import DetectionModel
import torch


def named():
    torch.manual_seed(2)
    model = DetectionModel("yolov8n.yaml", nc=10, verbose=False).eval()
    model.args = {"imgsz": 64}
    return model
'''


def ultralytics_example(tmp: Path) -> Example:
    """Random-init YOLOv8n / YOLO11n checkpoints at 64 px (ten classes) and a factory returning a model object; the
    batch is the digits enlarged to 64×64 RGB."""
    import torch

    from tests.unit.frameworks.ultralytics_testdata import detection_model, require_ultralytics, save_checkpoint

    require_ultralytics(tmp / "config")
    single = detection_model("yolov8n.yaml", classes=10)
    save_checkpoint(single, tmp / "yolov8n.pt")
    save_checkpoint(detection_model("yolo11n.yaml", classes=10, seed=1), tmp / "yolo11n.pt")
    (tmp / "ultralytics_models.py").write_text(ULTRALYTICS_FACTORY)
    head = single.model[-1]
    widths = sum(branch[0].conv.in_channels for branch in head.cv2)
    kernels = sum(m.weight.numel() for m in single.modules() if isinstance(m, torch.nn.Conv2d))
    shapes = [(84, 4), (84, 10)]  # 8² + 4² + 2² anchors: boxes and class scores

    def batch() -> np.ndarray:
        digits = digits_batch(False, n=12)
        return np.ascontiguousarray(np.repeat(np.repeat(np.repeat(digits, 3, axis=1), 8, axis=2), 8, axis=3))

    return Example(str(tmp / "yolov8n.pt"), str(tmp / "yolo11n.pt"), f"{tmp / 'ultralytics_models.py'}:named", widths,
                   "layers.0.conv", kernels, output_shapes={"single": shapes, "pair": shapes, "named": shapes},
                   kernel_kinds=1, concatenates=True, batch=batch, repeated_layers={"layers.9.m": 3})  # SPPF's pool


#: Framework name → a builder of its example models in a directory.
EXAMPLES = {"torch": torch_example, "keras": keras_example, "ultralytics": ultralytics_example}
