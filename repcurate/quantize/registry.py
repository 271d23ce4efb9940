"""The quantizers repcurate knows, by name (``mct`` for now; ONNX Runtime comes later)."""
from __future__ import annotations

from typing import cast

from repcurate.errors import UsageError
from repcurate.quantize.base import Quantizer
from repcurate.quantize.mct import MCTQuantizer

#: Quantizer name → quantizer object. Add one with :func:`register`.
QUANTIZERS: dict[str, Quantizer] = {}


def register(quantizer: Quantizer) -> Quantizer:
    """Add ``quantizer`` under its ``name`` (refuses a name already taken)."""
    if quantizer.name in QUANTIZERS:
        raise ValueError(f"a quantizer named {quantizer.name!r} is already registered")
    QUANTIZERS[quantizer.name] = quantizer
    return quantizer


register(cast(Quantizer, MCTQuantizer()))  # its settings are MCTSettings: narrower than the protocol says


def get(name: str) -> Quantizer:
    """The quantizer registered as ``name`` (:class:`UsageError` naming the known ones otherwise)."""
    try:
        return QUANTIZERS[name]
    except KeyError:
        raise UsageError(f"unknown quantizer {name!r}; fix: use one of {', '.join(sorted(QUANTIZERS))}") from None
