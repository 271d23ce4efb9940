"""The quantizers repcurate knows, by name: ``mct`` (the default, and the doctor's) and ``onnxruntime``."""
from __future__ import annotations

from typing import cast

from repcurate.errors import UsageError
from repcurate.quantize.base import GridAxis, Quantizer
from repcurate.quantize.mct import MCTQuantizer
from repcurate.quantize.onnxruntime import ORTQuantizer
from repcurate.registry import lookup, registrar

#: Quantizer name → quantizer object (see :mod:`repcurate.registry`).
REGISTRY: dict[str, Quantizer] = {}
QUANTIZERS = REGISTRY
register = registrar(REGISTRY, "quantizer", name_of=lambda quantizer: quantizer.name)

register(cast(Quantizer, MCTQuantizer()))  # its settings are MCTSettings: narrower than the protocol says
register(cast(Quantizer, ORTQuantizer()))


def get(name: str) -> Quantizer:
    """The quantizer registered as ``name`` (:class:`UsageError` naming the closest known one otherwise)."""
    try:
        return lookup(REGISTRY, name, "quantizer")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def grid_axes() -> tuple[GridAxis, ...]:
    """Every settings-grid axis of the registered quantizers, in registration order (an axis two quantizers share
    is offered once, as the first declares it): the options ``confirm`` offers and records."""
    axes: dict[str, GridAxis] = {}
    for quantizer in REGISTRY.values():
        for axis in quantizer.axes:
            axes.setdefault(axis.name, axis)
    return tuple(axes.values())
