"""Fashion-MNIST CNN (Keras 2 / TensorFlow 2.15) for the benchmarks: the Keras twin of fashion_cnn.py.

    repcurate build ... --model benchmarks/models/fashion_cnn_keras.py:make_model \
        --preprocess benchmarks/models/fashion_cnn_keras.py:preprocess

Functional model: three Conv2D-BatchNormalization-ReLU blocks (16, 32, 64 channels; 2×2 max-pool
after the first two), GlobalAveragePooling2D, Dense: layers MCT's Keras PTQ quantizes (BN folded).
Channels-last input (n, 28, 28, 1). The weights (``fashion_cnn.keras`` beside this file) come from
``python benchmarks/fashion_mnist.py train --framework keras``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WEIGHTS = Path(__file__).resolve().with_name("fashion_cnn.keras")
#: Same constants as fashion_cnn.py: mean and standard deviation of the training pixels in [0, 1].
MEAN, STD = 0.286, 0.353
SIZE = 28


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey pixels (any leading shape, then H×W) → float32 ``(x / 255 − MEAN) / STD``."""
    x = np.asarray(pixels, dtype=np.float32) / np.float32(255.0)
    return (x - np.float32(MEAN)) / np.float32(STD)


def build_model():
    """The untrained architecture (a ``tf.keras.Model``, functional API)."""
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=(SIZE, SIZE, 1), name="image")
    x = inputs
    for index, channels in enumerate((16, 32, 64)):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{index + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{index + 1}")(x)
        x = layers.ReLU(name=f"relu{index + 1}")(x)
        if index < 2:
            x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, name="head")(x)
    return tf.keras.Model(inputs, outputs, name="fashion_cnn")


def make_model():
    """The trained model (``tf.keras.models.load_model`` of ``fashion_cnn.keras`` beside this file)."""
    import tensorflow as tf

    if not WEIGHTS.is_file():
        raise FileNotFoundError(f"{WEIGHTS}: missing; fix: python benchmarks/fashion_mnist.py train --framework keras")
    return tf.keras.models.load_model(WEIGHTS, compile=False)


def preprocess(image: Image.Image) -> np.ndarray:
    """PIL image → float32 (28, 28, 1): grey, 28×28 (bilinear, only if needed), normalised."""
    grey = image.convert("L")
    if grey.size != (SIZE, SIZE):
        grey = grey.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return normalise(np.asarray(grey))[..., None]
