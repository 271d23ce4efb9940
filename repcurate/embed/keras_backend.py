"""Features from a Keras model: the last Dense layer's input, or any named layer's output."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from repcurate.data.preprocess import Preprocessor
from repcurate.embed.base import pool_features
from repcurate.errors import InputError, UsageError


def keras_model_fingerprint(model: Any, layer: str) -> str:
    """Hash of layer names and classes, every weight array and the feature layer."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"keras|{layer}|".encode())
    for keras_layer in model.layers:
        digest.update(f"{keras_layer.name}:{type(keras_layer).__name__}|".encode())
    for weight in model.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def is_keras_model(obj: Any) -> bool:
    """True for a Keras (TensorFlow 2) model object, without importing TensorFlow."""
    module = type(obj).__module__
    return module.startswith(("keras", "tensorflow", "tf_keras")) and hasattr(obj, "layers") and hasattr(obj, "predict")


class KerasEmbedder:
    """Runs a Keras model in inference mode and returns one layer's (pooled) features.

    Keras models take channels-last input, so ``--preprocess`` must return HWC samples.
    """

    framework = "keras"

    def __init__(self, model: Any, *, spec: str, preprocessor: Preprocessor, layer: str | None = None) -> None:
        import tensorflow as tf

        self.model_spec = spec
        self.preprocessor = preprocessor
        if layer is None:
            dense = [lyr for lyr in model.layers if isinstance(lyr, tf.keras.layers.Dense)]
            if not dense:
                raise UsageError(f"{spec} has no Dense classifier head; fix: pass --layer NAME (see model.summary())")
            target = dense[-1].input
            self.layer = f"{dense[-1].name}:input"
        else:
            names = [lyr.name for lyr in model.layers]
            if layer not in names:
                raise UsageError(f"layer {layer!r} not found in {spec}; layers: {', '.join(names[-8:])} …")
            target = model.get_layer(layer).output
            self.layer = layer
        self._features = tf.keras.Model(inputs=model.inputs, outputs=target)
        self.fingerprint = keras_model_fingerprint(model, self.layer)

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        try:
            features = self._features(np.ascontiguousarray(batch, dtype=np.float32), training=False)
        except Exception as exc:
            raise InputError(
                f"{self.model_spec} failed on a batch of shape {batch.shape}: {type(exc).__name__}: {exc}; "
                "fix: make --preprocess return the model's channels-last input"
            ) from exc
        return pool_features(np.asarray(features), channels_last=True)
