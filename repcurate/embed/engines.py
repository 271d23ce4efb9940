"""The embedding engines, by name (``build --engine``); see :mod:`repcurate.embed.engine` and
:mod:`repcurate.registry`. A member is a factory taking :class:`EngineSettings`."""
from __future__ import annotations

from collections.abc import Callable

from repcurate.embed.engine import EmbeddingEngine, EngineSettings
from repcurate.embed.local_engine import LocalEngine
from repcurate.embed.ray_engine import RayEngine
from repcurate.errors import UsageError
from repcurate.registry import lookup, registrar

EngineFactory = Callable[[EngineSettings], EmbeddingEngine]

#: Engine name → factory, in registration order.
REGISTRY: dict[str, EngineFactory] = {}
register = registrar(REGISTRY, "embedding engine", name_of=lambda factory: factory.name)

register(LocalEngine)
register(RayEngine)


def create(name: str, settings: EngineSettings | None = None) -> EmbeddingEngine:
    """The engine registered as ``name`` made with ``settings`` (:class:`UsageError` for an unknown name)."""
    try:
        factory = lookup(REGISTRY, name, "embedding engine")
    except ValueError as exc:
        raise UsageError(f"--engine: {exc}") from None
    return factory(settings or EngineSettings())
