"""The frameworks repcurate knows, by name; which one loads a spec or owns a model object."""
from __future__ import annotations

from typing import Any

from repcurate.errors import UsageError
from repcurate.frameworks.base import Framework
from repcurate.frameworks.keras import KerasFramework
from repcurate.frameworks.torch import TorchFramework
from repcurate.frameworks.ultralytics_yolo import UltralyticsFramework
from repcurate.registry import lookup, registrar

#: Framework name → framework object, in the order they are asked (see :mod:`repcurate.registry`).
REGISTRY: dict[str, Framework] = {}
FRAMEWORKS = REGISTRY
register = registrar(REGISTRY, "framework", name_of=lambda framework: framework.name)

register(UltralyticsFramework())  # before torch: its models are nn.Modules too
register(TorchFramework())
register(KerasFramework())


def get(name: str) -> Framework:
    """The framework registered as ``name`` (:class:`UsageError` naming the closest known one otherwise)."""
    try:
        return lookup(REGISTRY, name, "framework")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def framework_of(model: Any) -> Framework | None:
    """The framework whose model object ``model`` is, or None."""
    return next((f for f in FRAMEWORKS.values() if f.owns(model)), None)


def framework_loading(spec: str) -> Framework | None:
    """The framework that loads the spec string itself (a model file type, a bundled model's name), or None."""
    return next((f for f in FRAMEWORKS.values() if f.loads(spec)), None)
