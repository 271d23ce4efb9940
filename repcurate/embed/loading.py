"""Turn ``--model`` / ``--preprocess`` arguments into an embedder and the set's preprocessing."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from repcurate.data.preprocess import Preprocessor, make_preprocessor
from repcurate.embed.base import Embedder
from repcurate.embed.default_model import (
    DEFAULT_MODEL_NAME,
    HEAD_LAYER,
    bundled_model_fingerprint,
    efficientnet_lite0_preprocess,
    load_efficientnet_lite0,
)
from repcurate.embed.keras_backend import is_keras_model
from repcurate.errors import InputError, MissingDependencyError, RepcurateError, UsageError
from repcurate.spec import load_object

ModelArg = str | Any | None
PreprocessArg = str | Callable[[Image.Image], Any] | Preprocessor | None

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class LoadedModel:
    """A model object with the framework it belongs to and how the user named it."""

    model: Any
    framework: str
    spec: str
    is_default: bool


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch.nn as nn
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False
    return isinstance(obj, nn.Module)


def _import_tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError("tensorflow", extra="keras", purpose="Keras models") from None
    return tf


def _classify(obj: Any, spec: str) -> LoadedModel:
    if _is_torch_module(obj):
        return LoadedModel(obj, "torch", spec, False)
    if is_keras_model(obj):
        return LoadedModel(obj, "keras", spec, False)
    raise InputError(f"{spec} gave a {type(obj).__name__}; fix: return a torch nn.Module or a Keras model")


def load_model(model: ModelArg) -> LoadedModel:
    """Load the model to embed with: ``None`` / ``"efficientnet-lite0"`` (bundled), a ``.keras`` /
    ``.h5`` file, ``file.py:factory`` / ``module:factory``, or a model object."""
    if model is None or model == DEFAULT_MODEL_NAME:
        return LoadedModel(load_efficientnet_lite0(), "torch", DEFAULT_MODEL_NAME, True)
    if not isinstance(model, str):
        return _classify(model, type(model).__name__)
    if model.lower().endswith(KERAS_SUFFIXES):
        path = Path(model)
        if not path.is_file():
            raise InputError(f"{path}: model file not found; fix: pass an existing .keras or .h5 file")
        tf = _import_tensorflow()
        try:
            keras_model = tf.keras.models.load_model(path, compile=False)
        except Exception as exc:
            raise InputError(f"{path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from exc
        return LoadedModel(keras_model, "keras", model, False)
    if ":" not in model:
        raise UsageError(
            f"--model {model!r}: use {DEFAULT_MODEL_NAME}, a .keras/.h5 file, path/to/file.py:factory "
            "or package.module:factory"
        )
    obj = load_object(model)
    if not (_is_torch_module(obj) or is_keras_model(obj)):
        if not callable(obj):
            raise InputError(f"{model} is a {type(obj).__name__}; fix: name a model or a factory returning one")
        try:
            obj = obj()
        except Exception as exc:
            raise InputError(f"{model}: the factory raised {type(exc).__name__}: {exc}") from exc
    return _classify(obj, model)


def as_preprocessor(preprocess: PreprocessArg) -> Preprocessor | None:
    """A :class:`Preprocessor` from a spec string, a callable, or one already built."""
    if preprocess is None or isinstance(preprocess, Preprocessor):
        return preprocess
    return make_preprocessor(preprocess)


def default_preprocessor() -> Preprocessor:
    """The bundled model's own evaluation preprocessing."""
    return make_preprocessor(efficientnet_lite0_preprocess, name=f"{DEFAULT_MODEL_NAME}:preprocess")


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
        """The real :class:`TorchEmbedder` (loads the model on first use)."""
        if self._loaded is None:
            from repcurate.embed.torch_backend import TorchEmbedder

            self._loaded = TorchEmbedder(load_efficientnet_lite0(), spec=self.model_spec, preprocessor=self.preprocessor)
        return self._loaded

    def embed_batch(self, batch: Any) -> Any:
        return self.loaded.embed_batch(batch)


def build_embedder(model: ModelArg, *, layer: str | None, preprocess: PreprocessArg) -> tuple[Embedder, Preprocessor]:
    """Return ``(embedder, set_preprocessor)``.

    With the bundled default model the embedder always uses the model's own preprocessing, while
    the set's tensors use ``preprocess`` when given; without ``layer`` it is a
    :class:`LazyBundledEmbedder`. With a user model, ``preprocess`` is the model's input pipeline
    and is required: it feeds both the embeddings and the set.
    """
    user_pre = as_preprocessor(preprocess)
    if (model is None or model == DEFAULT_MODEL_NAME) and layer is None:
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
    if loaded.framework == "keras":
        _import_tensorflow()
        from repcurate.embed.keras_backend import KerasEmbedder

        return KerasEmbedder(loaded.model, spec=loaded.spec, preprocessor=embed_pre, layer=layer), set_pre
    from repcurate.embed.torch_backend import TorchEmbedder

    return TorchEmbedder(loaded.model, spec=loaded.spec, preprocessor=embed_pre, layer=layer), set_pre


def load_recorded_preprocessor(manifest: dict[str, Any], *, trust_set: bool = False,
                               origin: str = "the set's manifest", option: str = "--eval-preprocess") -> Preprocessor | None:
    """The preprocessing a set's manifest records, loaded again from its spec (None if it cannot be).

    The bundled model's preprocessing always loads; any other recorded spec is code named by the set
    and loads only with ``trust_set`` (else :class:`UsageError`, see :mod:`repcurate.trust`), echoed on stderr.
    """
    from repcurate import trust

    info = manifest.get("preprocessing") or {}
    spec = info.get("spec", "")
    if spec == f"{DEFAULT_MODEL_NAME}:preprocess":
        return default_preprocessor()
    if not isinstance(spec, str) or ":" not in spec:
        return None
    trust.require(origin, "preprocessing.spec", spec, option, trust_set=trust_set)
    trust.announce("preprocessing.spec", spec)
    try:
        return make_preprocessor(spec)
    except RepcurateError as exc:
        logging.getLogger("repcurate").warning("cannot load the repset's preprocessing %s: %s", spec, exc)
        return None
