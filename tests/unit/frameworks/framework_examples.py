"""Small real models for every registered framework, named by spec as a user would name them: a digits CNN
(one output), a two-head variant returning a tuple, and one returning a dict. A new framework adds its
example here; the contract tests refuse a registered framework without one."""
from __future__ import annotations

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


#: Framework name → a builder of its example models in a directory.
EXAMPLES = {"torch": torch_example, "keras": keras_example}
