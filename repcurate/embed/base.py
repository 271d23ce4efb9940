"""The embedder contract shared by the PyTorch, Keras and bundled-default backends."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from repcurate.data.preprocess import Preprocessor


class Embedder(Protocol):
    """Maps a batch of preprocessed samples to an ``(n, d)`` float32 feature matrix."""

    #: "torch" or "keras".
    framework: str
    #: Human-readable model reference (spec or class name).
    model_spec: str
    #: Stable hash of the model weights, architecture and the feature layer.
    fingerprint: str
    #: Name of the layer whose features are used.
    layer: str
    #: Preprocessing that produces the embedder's own input.
    preprocessor: Preprocessor

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Features of a stacked batch of samples, float32, shape ``(n, d)``."""
        ...


def pool_features(features: np.ndarray, *, channels_last: bool) -> np.ndarray:
    """Global-average-pool 3-D/4-D feature maps to one vector per sample; flatten the rest."""
    if features.ndim == 4:
        axes = (1, 2) if channels_last else (2, 3)
        features = features.mean(axis=axes)
    elif features.ndim == 3:
        features = features.mean(axis=1 if channels_last else 2)
    return np.ascontiguousarray(features.reshape(features.shape[0], -1), dtype=np.float32)
