"""The frameworks repcurate knows, by name; which one loads a spec or owns a model object."""
from __future__ import annotations

from typing import Any

from repcurate.errors import UsageError
from repcurate.frameworks.base import Framework
from repcurate.frameworks.keras import KerasFramework
from repcurate.frameworks.torch import TorchFramework

#: Framework name → framework object. Add one with :func:`register`.
FRAMEWORKS: dict[str, Framework] = {}


def register(framework: Framework) -> Framework:
    """Add ``framework`` under its ``name`` (refuses a name already taken)."""
    if framework.name in FRAMEWORKS:
        raise ValueError(f"a framework named {framework.name!r} is already registered")
    FRAMEWORKS[framework.name] = framework
    return framework


register(TorchFramework())
register(KerasFramework())


def get(name: str) -> Framework:
    """The framework registered as ``name`` (:class:`UsageError` naming the known ones otherwise)."""
    try:
        return FRAMEWORKS[name]
    except KeyError:
        raise UsageError(f"unknown framework {name!r}; fix: use one of {', '.join(sorted(FRAMEWORKS))}") from None


def framework_of(model: Any) -> Framework | None:
    """The framework whose model object ``model`` is, or None."""
    return next((f for f in FRAMEWORKS.values() if f.owns(model)), None)


def framework_loading(spec: str) -> Framework | None:
    """The framework that loads the spec string itself (a model file type, a bundled model's name), or None."""
    return next((f for f in FRAMEWORKS.values() if f.loads(spec)), None)
