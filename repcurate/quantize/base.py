"""What every post-training quantizer offers ``confirm`` (and, for MCT, the doctor).

A quantizer quantizes a float model of any registered framework with a calibration data generator and a
settings object; it names the settings grid an A/B explores (for MCT: bias correction on and off); it
exports a quantized model. The framework comes from the model (:mod:`repcurate.frameworks`), the quantizer
from its name (:mod:`repcurate.quantize.registry`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from repcurate.frameworks.base import Framework

#: A zero-argument callable returning a fresh iterator of ``[batch]`` lists (one array per model input).
DataGen = Callable[[], Iterator[list[np.ndarray]]]


class QuantizerSettings(Protocol):
    """One point of a quantizer's settings: frozen, printable data."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every field)."""

    def label(self) -> str:
        """A short human name for progress lines."""


class Quantizer(Protocol):
    """One PTQ toolchain. Members are registered in :mod:`repcurate.quantize.registry`."""

    #: Stable id (``mct``).
    name: str
    #: The settings fields an A/B varies, in the order they are reported (e.g. ``("bias_correction",)``).
    grid_axes: tuple[str, ...]
    #: Each axis's values when the caller names none.
    default_axes: Mapping[str, Sequence[Any]]
    #: The uniform weight bit widths it offers (``--weights-bits``).
    weight_bits: tuple[int, ...]
    #: The settings fields ``confirm`` fills from its own options (``weights_bits``, and ``tpc`` for MCT).
    base_fields: tuple[str, ...]

    def settings(self, **fields: Any) -> QuantizerSettings:
        """Validated settings (:class:`UsageError` naming the bad field)."""

    def grid(self, base: QuantizerSettings, axes: Mapping[str, Sequence[Any]] | None = None) -> list[QuantizerSettings]:
        """``base`` at every combination of the ``axes`` values (default :attr:`default_axes`), in order."""

    def prepare(self, framework: Framework, model: Any) -> tuple[Any, list[str]]:
        """The float model this quantizer will read, and the output-preserving rewrites applied to it."""

    def quantize(self, framework: Framework, model: Any, data_gen: DataGen,
                 settings: QuantizerSettings) -> tuple[Any, float]:
        """The quantized model (runnable by ``framework.outputs``) and the wall time in seconds."""

    def export_suffix(self, framework: Framework) -> str:
        """The exported model file's suffix."""

    def require_exporter(self, framework: Framework) -> None:
        """Raise MissingDependencyError when exporting would fail for a missing package."""

    def export(self, framework: Framework, q_model: Any, path: Path, data_gen: DataGen) -> None:
        """Write ``q_model`` to ``path``."""
