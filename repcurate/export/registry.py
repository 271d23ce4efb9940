"""The export formats repcurate writes, by ``--to`` name (a new format: a class with the ``Exporter`` protocol's
members and one ``register(...)`` line here; ``tests/unit/export/test_contract.py`` then checks it)."""
from __future__ import annotations

from repcurate.errors import UsageError
from repcurate.export.base import Exporter
from repcurate.export.formats import ModelOptExporter, NpzExporter, TFLiteExporter
from repcurate.registry import lookup, registrar

#: ``--to`` name → exporter (see :mod:`repcurate.registry`).
REGISTRY: dict[str, Exporter] = {}
EXPORTERS = REGISTRY
register = registrar(REGISTRY, "export format", name_of=lambda exporter: exporter.name)

register(NpzExporter())
register(ModelOptExporter())
register(TFLiteExporter())


def get(name: str) -> Exporter:
    """The exporter registered as ``name`` (:class:`UsageError` naming the closest known one otherwise)."""
    try:
        return lookup(REGISTRY, name, "export format")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
