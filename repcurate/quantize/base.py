"""What every post-training quantizer offers ``confirm`` (and, for MCT, the doctor).

A quantizer quantizes a float model of any registered framework with a calibration data generator and a
settings object; it names the settings grid an A/B explores (for MCT: bias correction on and off), each axis with its
command-line option (:class:`GridAxis`); it exports a quantized model. The framework comes from the model (:mod:`repcurate.frameworks`), the quantizer
from its name (:mod:`repcurate.quantize.registry`).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from repcurate.errors import UsageError
from repcurate.frameworks.base import Framework

#: A zero-argument callable returning a fresh iterator of ``[batch]`` lists (one array per model input).
DataGen = Callable[[], Iterator[list[np.ndarray]]]


@dataclass(frozen=True)
class GridAxis:
    """One axis of a quantizer's settings grid, with what the command line needs to offer it.

    ``name`` is the settings field (an attribute of the quantizer's settings objects) and the option's name
    (``bias_correction`` → ``--bias-correction``); ``choices`` maps the words the option takes to the field's
    values (``{"on": True, "off": False}``), in the order they are offered; ``default`` the values the grid runs
    when none are named (default: every choice); ``usage`` what a bad value is told (default: ``use one or more
    of ...``). Declaring it in the quantizer's ``axes`` is all it takes: ``confirm`` adds the option, checks the
    values, runs the grid, records the values given and reports them."""

    name: str
    choices: Mapping[str, Any]
    help: str
    metavar: str = "VALUES"
    default: tuple[Any, ...] | None = None
    usage: str | None = None
    #: Words are matched case-insensitively (``ON``, ``MinMax``).
    lower: bool = field(default=True, repr=False)

    @property
    def option(self) -> str:
        """The command-line option: ``--bias-correction``."""
        return "--" + self.name.replace("_", "-")

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value the axis offers, in order."""
        return tuple(self.choices.values())

    @property
    def defaults(self) -> tuple[Any, ...]:
        """The values the grid runs when none are named."""
        return self.values if self.default is None else tuple(self.default)

    def parse(self, text: str) -> tuple[Any, ...]:
        """``"on,off"`` → ``(True, False)`` (duplicates dropped, order kept); ``ValueError`` with :attr:`usage`."""
        parts = [p.strip().lower() if self.lower else p.strip() for p in text.split(",") if p.strip()]
        if not parts or any(p not in self.choices for p in parts):
            raise ValueError(self.usage or f"use one or more of {','.join(self.choices)}")
        return tuple(dict.fromkeys(self.choices[p] for p in parts))

    def words(self, values: Sequence[Any]) -> str:
        """The option's text for ``values`` (the inverse of :meth:`parse`): ``(True, False)`` → ``"on,off"``."""
        spelled = {_key(value): word for word, value in self.choices.items()}
        return ",".join(spelled.get(_key(v), str(v)) for v in values)

    def offers(self, value: Any) -> bool:
        """Whether ``value`` is one of the axis's values (``1`` is not ``True``)."""
        return _key(value) in {_key(v) for v in self.values}


def _key(value: Any) -> tuple[type, Any]:
    """A value with its type, so ``True`` and ``1`` differ."""
    return (type(value), value)


class _GridOwner(Protocol):
    """What :func:`settings_grid` reads of a quantizer."""

    @property
    def name(self) -> str: ...

    @property
    def axes(self) -> Sequence[GridAxis]: ...

    def settings(self, **fields: Any) -> Any: ...


def settings_grid(quantizer: _GridOwner, base: Any, axes: Mapping[str, Sequence[Any]] | None = None) -> list[Any]:
    """``base`` (a frozen dataclass of settings) at every combination of the ``axes`` values (default: each axis's
    defaults), axes in the quantizer's order, each point validated by ``quantizer.settings``: the ``grid`` of
    any quantizer whose settings are a dataclass."""
    chosen = dict(axes) if axes is not None else {axis.name: axis.defaults for axis in quantizer.axes}
    names = [axis.name for axis in quantizer.axes]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise UsageError(f"the {quantizer.name} quantizer's settings grid has no axis {unknown[0]!r}; axes: {', '.join(names)}")
    varied = [name for name in names if name in chosen]
    given = {f.name: getattr(base, f.name) for f in fields(base)}
    return [quantizer.settings(**{**given, **dict(zip(varied, values))})
            for values in itertools.product(*(chosen[n] for n in varied))]


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
    #: The settings fields an A/B varies, in the order they are reported, each with its command-line option
    #: (MCT: ``bias_correction``, ``--bias-correction on,off``).
    axes: tuple[GridAxis, ...]
    #: The uniform weight bit widths it offers (``--weights-bits``).
    weight_bits: tuple[int, ...]
    #: The settings fields ``confirm`` fills from its own options (``weights_bits``, and ``tpc`` for MCT).
    base_fields: tuple[str, ...]

    def settings(self, **fields: Any) -> QuantizerSettings:
        """Validated settings (:class:`UsageError` naming the bad field)."""

    def grid(self, base: QuantizerSettings, axes: Mapping[str, Sequence[Any]] | None = None) -> list[QuantizerSettings]:
        """``base`` at every combination of the ``axes`` values (default: each axis's defaults), in order
        (:func:`settings_grid` does it for dataclass settings)."""

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
