"""Turn ``--model`` / ``--preprocess`` arguments into an embedder and the set's preprocessing."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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
from repcurate.frameworks.loading import (
    ModelArg,
    PreprocessArg,
    as_preprocessor,
    default_preprocessor,
    load_model,
    own_preprocess_spec,
)
from repcurate.spec import split_spec


def absolute_spec(value: Any) -> Any:
    """A ``file.py:name`` spec with its file made absolute (another process, another node's worker, may run in
    another folder); anything else unchanged."""
    if isinstance(value, str) and ":" not in value and Path(value).suffix.lower() == ".pt" and Path(value).is_file():
        return Path(value).resolve().as_posix()  # a checkpoint file named on the command line
    if not isinstance(value, str) or ":" not in value:
        return value
    try:
        target, attribute = split_spec(value)
    except UsageError:  # not a spec: the loader reports it where it is used
        return value
    if target.endswith(".py") or "/" in target or "\\" in target:
        return f"{Path(target).resolve().as_posix()}:{attribute}"
    return value


@dataclass(frozen=True)
class EmbedderRecipe:
    """The arguments :func:`build_embedder` was called with, so another process (a Ray worker) can build the same
    embedder: the command line's own specs (file paths made absolute) or the caller's objects (pickled).
    Rebuilding runs exactly the code the driver ran — nothing a set's manifest names (see :mod:`repcurate.trust`)."""

    model: ModelArg
    layer: str | None
    preprocess: PreprocessArg
    device: str = "cpu"

    @property
    def bundled_input(self) -> bool:
        """Whether the embedder is fed by the bundled model's own preprocessing (not ``preprocess``)."""
        return self.model is None or self.model == DEFAULT_MODEL_NAME

    def preprocessor(self) -> Preprocessor:
        """The embedder's input pipeline, without loading the model."""
        if self.bundled_input:
            return default_preprocessor()
        pre = as_preprocessor(self.preprocess)
        if pre is None:
            raise UsageError("a user --model needs --preprocess")
        return pre

    def build(self, device: str | None = None) -> Embedder:
        """The embedder, computing on ``device`` (default: the recipe's)."""
        return build_embedder(self.model, layer=self.layer, preprocess=self.preprocess,
                              device=device if device is not None else self.device)[0]


class LazyBundledEmbedder:
    """The bundled EfficientNet-Lite0 embedder (head input features), built on its first batch.

    Its fingerprint comes from the weights file and the packages' versions
    (:func:`bundled_model_fingerprint`), so a run whose embeddings are all cached (a rebuild of an
    unchanged folder, a repeated check) neither imports torch nor loads the model.
    """

    framework = "torch"
    model_spec = DEFAULT_MODEL_NAME
    layer = HEAD_LAYER

    def __init__(self, preprocessor: Preprocessor, device: str = "cpu") -> None:
        self.preprocessor = preprocessor
        self.device = device
        self.recipe: EmbedderRecipe | None = None
        self.fingerprint = bundled_model_fingerprint()
        self._loaded: Embedder | None = None

    @property
    def loaded(self) -> Embedder:
        """The real :class:`ModelEmbedder` (loads the model on first use)."""
        if self._loaded is None:
            from repcurate.frameworks.registry import get

            self._loaded = ModelEmbedder(get(self.framework), load_efficientnet_lite0(), spec=self.model_spec,
                                         preprocessor=self.preprocessor, device=self.device)
        return self._loaded

    def prepare(self) -> None:
        """Load the model now (an engine calls this in a background thread while the first batches decode)."""
        self.loaded  # noqa: B018 - the property loads it

    def embed_batch(self, batch: Any) -> Any:
        return self.loaded.embed_batch(batch)


def build_embedder(model: ModelArg, *, layer: str | Sequence[str] | None, preprocess: PreprocessArg,
                   device: str = "cpu") -> tuple[Embedder, Preprocessor]:
    """Return ``(embedder, set_preprocessor)``.

    With the bundled default model the embedder always uses the model's own preprocessing, while
    the set's tensors use ``preprocess`` when given; without ``layer`` it is a
    :class:`LazyBundledEmbedder`. With a user model, ``preprocess`` is the model's input pipeline
    and is required: it feeds both the embeddings and the set. The embedder computes on ``device`` (a resolved
    name, :func:`repcurate.frameworks.device.resolve_device`).
    """
    recipe = EmbedderRecipe(absolute_spec(model), ",".join(layer_names(layer)) or None, absolute_spec(preprocess), device)
    user_pre = as_preprocessor(preprocess)
    if (model is None or model == DEFAULT_MODEL_NAME) and not layer_names(layer):
        embed_pre = default_preprocessor()
        lazy = LazyBundledEmbedder(embed_pre, device)
        lazy.recipe = recipe
        return lazy, user_pre or embed_pre
    loaded = load_model(model)
    if loaded.is_default:
        embed_pre = default_preprocessor()
        set_pre = user_pre or embed_pre
    else:
        own = own_preprocess_spec(loaded) if user_pre is None else None
        if own is not None:  # the model brings its preprocessing (an Ultralytics checkpoint: its letterbox)
            user_pre = as_preprocessor(own)
            recipe = EmbedderRecipe(recipe.model, recipe.layer, own, device)
        if user_pre is None:
            raise UsageError(
                f"--model {loaded.spec} needs --preprocess: the evaluation preprocessing that turns a PIL "
                "image into that model's input (file.py:fn or module:fn)"
            )
        embed_pre = set_pre = user_pre
    embedder = ModelEmbedder(loaded.framework, loaded.model, spec=loaded.spec, preprocessor=embed_pre, layer=layer,
                             device=device)
    embedder.recipe = recipe
    return embedder, set_pre
