"""The embedder contract, and the one embedder built on a framework's feature capture."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from repcurate.data.preprocess import Preprocessor
from repcurate.frameworks.base import Framework


class Embedder(Protocol):
    """Maps a batch of preprocessed samples to an ``(n, d)`` float32 feature matrix."""

    #: The framework's name ("torch", "keras").
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



class ModelEmbedder:
    """Embeds with a model of any registered framework: its :meth:`Framework.capture` of ``layer`` (by default
    the input of the last Linear/Dense layer), fed by ``preprocessor``, computed on ``device``."""

    def __init__(self, framework: Framework, model: Any, *, spec: str, preprocessor: Preprocessor,
                 layer: str | Sequence[str] | None = None, device: str = "cpu") -> None:
        self.framework = framework.name
        self.model_spec = spec
        self.preprocessor = preprocessor
        self.device = device
        #: How to build this embedder again in another process (set by :func:`repcurate.embed.loading.build_embedder`).
        self.recipe: Any = None
        self._capture = framework.capture(model, layer=layer, spec=spec, device=device)
        self.layer = self._capture.layer
        self.fingerprint = self._capture.fingerprint

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        return self._capture(batch)
