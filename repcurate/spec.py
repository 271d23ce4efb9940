"""Resolve user code given as ``path/to/file.py:name`` or ``package.module:name``."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from repcurate.errors import InputError, UsageError, user_code_failed

#: The bundled model's spec (``--model efficientnet-lite0``, the default); ``f"{DEFAULT_MODEL_NAME}:preprocess"`` is its
#: preprocessing. Defined here, below :mod:`repcurate.trust` and :mod:`repcurate.frameworks`, which both name it.
DEFAULT_MODEL_NAME = "efficientnet-lite0"


def spec_text(value: Any) -> str | None:
    """How a model / preprocessing / postprocessing argument was given: its spec string, or the object's name
    (``None`` when not given) — what a result records so its command line can be shown again."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return value.as_posix()
    spec = getattr(value, "spec", None)
    return spec if isinstance(spec, str) else getattr(value, "__qualname__", type(value).__name__)


def split_spec(spec: str) -> tuple[str, str]:
    """Split ``target:attribute`` at the last colon (so Windows drive letters survive)."""
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not all(part.isidentifier() for part in attribute.split(".")):
        raise UsageError(
            f"{spec!r} is not a code reference; fix: use path/to/file.py:name or package.module:name"
        )
    return target, attribute


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: file not found; fix: give an existing .py file in path/to/file.py:name")
    digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
    name = f"repcurate_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: cannot be imported as Python; fix: give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit at import time too
        del sys.modules[name]
        if not user_code_failed(exc):
            raise
        raise InputError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from exc
    return module


def load_object(spec: str) -> Any:
    """Return the object named by ``spec`` (attributes may be dotted: ``module:obj.attr``)."""
    target, attribute = split_spec(spec)
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _import_file(Path(target))
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise InputError(f"{target}: cannot import module ({exc}); fix: install it or use path/to/file.py:{attribute}") from exc
        except BaseException as exc:
            if not user_code_failed(exc):
                raise
            raise InputError(f"{target}: importing it raised {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{spec}: {target} has no attribute {part!r}") from None
    return obj
