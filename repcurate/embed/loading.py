"""Turn ``--model`` / ``--preprocess`` arguments into an embedder and the set's preprocessing."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repcurate.data.preprocess import Preprocessor
from repcurate.embed.base import Embedder, ModelEmbedder
from repcurate.errors import UsageError
from repcurate.frameworks.base import layer_names
from repcurate.frameworks.bundled import (
    DEFAULT_MODEL_NAME,
    HEAD_LAYER,
    bundled_model_fingerprint,
    load_efficientnet_lite0,
)
from repcurate.frameworks.loading import ModelArg, PreprocessArg, as_preprocessor, default_preprocessor, load_model


class LazyBundledEmbedder:
    """The bundled EfficientNet-Lite0 embedder (head input features), built on its first batch.

    Its fingerprint comes from the weights file and the packages' versions
    (:func:`bundled_model_fingerprint`), so a run whose embeddings are all cached (a rebuild of an
    unchanged folder, a repeated check) neither imports torch nor loads the model.
    """

    framework = "torch"
    model_spec = DEFAULT_MODEL_NAME
    layer = HEAD_LAYER

    def __init__(self, preprocessor: Preprocessor) -> None:
        self.preprocessor = preprocessor
        self.fingerprint = bundled_model_fingerprint()
        self._loaded: Embedder | None = None

    @property
    def loaded(self) -> Embedder:
        """The real :class:`ModelEmbedder` (loads the model on first use)."""
        if self._loaded is None:
            from repcurate.frameworks.registry import get

            self._loaded = ModelEmbedder(get(self.framework), load_efficientnet_lite0(), spec=self.model_spec,
                                         preprocessor=self.preprocessor)
        return self._loaded

    def embed_batch(self, batch: Any) -> Any:
        return self.loaded.embed_batch(batch)


def build_embedder(model: ModelArg, *, layer: str | Sequence[str] | None, preprocess: PreprocessArg) -> tuple[Embedder, Preprocessor]:
    """Return ``(embedder, set_preprocessor)``.

    With the bundled default model the embedder always uses the model's own preprocessing, while
    the set's tensors use ``preprocess`` when given; without ``layer`` it is a
    :class:`LazyBundledEmbedder`. With a user model, ``preprocess`` is the model's input pipeline
    and is required: it feeds both the embeddings and the set.
    """
    user_pre = as_preprocessor(preprocess)
    if (model is None or model == DEFAULT_MODEL_NAME) and not layer_names(layer):
        embed_pre = default_preprocessor()
        return LazyBundledEmbedder(embed_pre), user_pre or embed_pre
    loaded = load_model(model)
    if loaded.is_default:
        embed_pre = default_preprocessor()
        set_pre = user_pre or embed_pre
    else:
        if user_pre is None:
            raise UsageError(
                f"--model {loaded.spec} needs --preprocess: the evaluation preprocessing that turns a PIL "
                "image into that model's input (file.py:fn or module:fn)"
            )
        embed_pre = set_pre = user_pre
    return ModelEmbedder(loaded.framework, loaded.model, spec=loaded.spec, preprocessor=embed_pre, layer=layer), set_pre
