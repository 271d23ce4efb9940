"""Turn ``--model`` / ``--preprocess`` arguments into a model (with its framework) and a preprocessor."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from repcurate.data.preprocess import Preprocessor, make_preprocessor
from repcurate.errors import InputError, RepcurateError, UsageError, user_code_failed
from repcurate.frameworks.base import Framework
from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME, efficientnet_lite0_preprocess
from repcurate.frameworks.registry import FRAMEWORKS, framework_loading, framework_of
from repcurate.spec import load_object

ModelArg = str | Any | None
PreprocessArg = str | Callable[[Image.Image], Any] | Preprocessor | None


@dataclass
class LoadedModel:
    """A model object with the framework it belongs to and how the user named it."""

    model: Any
    framework: Framework
    spec: str
    is_default: bool


def _classify(obj: Any, spec: str) -> LoadedModel:
    framework = framework_of(obj)
    if framework is None:
        kinds = " or ".join(sorted(FRAMEWORKS))
        raise InputError(f"{spec} gave a {type(obj).__name__}; fix: return a model of a known framework ({kinds}): "
                         "a torch nn.Module or a Keras model")
    adopt = getattr(framework, "adopt", None)  # e.g. an Ultralytics model object made traceable
    return LoadedModel(adopt(obj, spec) if adopt is not None else obj, framework, spec, False)


def own_preprocess_spec(loaded: LoadedModel) -> str | None:
    """The spec of the preprocessing a model brings itself (an Ultralytics checkpoint: its letterbox), or None."""
    own = getattr(loaded.framework, "preprocess_spec", None)
    return own(loaded.model) if own is not None else None


def own_postprocess(framework: Framework, model: Any) -> Callable[..., Any] | None:
    """The decoding a detector brings itself (an Ultralytics checkpoint: NMS), or None."""
    own = getattr(framework, "postprocess", None)
    return own(model) if own is not None else None


def load_model(model: ModelArg) -> LoadedModel:
    """Load the model to embed with: ``None`` / ``"efficientnet-lite0"`` (bundled), a ``.keras`` /
    ``.h5`` file, ``file.py:factory`` / ``module:factory``, or a model object. Each registered framework
    says which spec strings it loads itself and which objects are its models."""
    if model is None:
        model = DEFAULT_MODEL_NAME
    if not isinstance(model, str):
        return _classify(model, type(model).__name__)
    framework = framework_loading(model)
    if framework is not None:
        return LoadedModel(framework.load(model), framework, model, model == DEFAULT_MODEL_NAME)
    if ":" not in model:
        raise UsageError(
            f"--model {model!r}: use {DEFAULT_MODEL_NAME}, a .keras/.h5 file, an Ultralytics best.pt, path/to/file.py:factory "
            "or package.module:factory"
        )
    obj = load_object(model)
    if framework_of(obj) is None:
        if not callable(obj):
            raise InputError(f"{model} is a {type(obj).__name__}; fix: name a model or a factory returning one")
        try:
            obj = obj()
        except BaseException as exc:  # SystemExit from the factory too
            if not user_code_failed(exc):
                raise
            raise InputError(f"{model}: the factory raised {type(exc).__name__}: {exc}") from exc
    return _classify(obj, model)


def load_postprocess(postprocess: str | Callable[..., Any] | None) -> tuple[Callable[..., Any] | None, str]:
    """A detector's ``--postprocess``: ``file.py:fn`` / ``module:fn`` (code named on the command line, loaded like
    ``--model``) or a callable; and how messages name it."""
    if postprocess is None:
        return None, "--postprocess"
    if not isinstance(postprocess, str):
        return postprocess, getattr(postprocess, "__qualname__", type(postprocess).__name__)
    if ":" not in postprocess:
        raise UsageError(f"--postprocess {postprocess!r}: use path/to/file.py:fn or package.module:fn")
    fn = load_object(postprocess)
    if not callable(fn):
        raise InputError(f"{postprocess} is a {type(fn).__name__}; fix: name a function outputs -> "
                         "[(boxes, scores, classes) per image]")
    return fn, postprocess


def as_preprocessor(preprocess: PreprocessArg) -> Preprocessor | None:
    """A :class:`Preprocessor` from a spec string, a callable, or one already built."""
    if preprocess is None or isinstance(preprocess, Preprocessor):
        return preprocess
    return make_preprocessor(preprocess)


def default_preprocessor() -> Preprocessor:
    """The bundled model's own evaluation preprocessing."""
    return make_preprocessor(efficientnet_lite0_preprocess, name=f"{DEFAULT_MODEL_NAME}:preprocess")


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
    if not trust.is_bundled(spec):
        trust.announce("preprocessing.spec", spec)
    try:
        return make_preprocessor(spec)
    except RepcurateError as exc:
        logging.getLogger("repcurate").warning("cannot load the repset's preprocessing %s: %s", spec, exc)
        return None
