"""One renderer per (result kind, format), and the result protocol every command's result satisfies.

A result (``BuildResult``, ``SuiteResult``, ``ConfirmResult``, ``DoctorResult``) has a ``kind``, a JSON-safe
``to_dict()`` and one gate, ``passed()`` (exit code 0 when it passes, 1 otherwise). Its renderers live in
``report/<kind>_formats.py`` and are registered here; the CLI prints any result through one ``emit``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from repcurate.registry import lookup, registrar
from repcurate.report import build_formats, confirm_formats, doctor_formats, suite_formats


@runtime_checkable
class Result(Protocol):
    """What every command's result provides."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""

    def passed(self) -> bool:
        """The gate: whether the command exits 0 (results that report without gating always pass)."""


#: "<kind>/<format>" → renderer(result, **options) -> str.
RENDERERS: dict[str, Callable[..., str]] = {}
register = registrar(RENDERERS, "renderer", name_of=lambda renderer: renderer.__name__)

for _kind, _module in (("build", build_formats), ("check", suite_formats), ("confirm", confirm_formats),
                       ("doctor", doctor_formats)):
    for _format, _renderer in _module.RENDERERS.items():
        register(_renderer, name=f"{_kind}/{_format}")


def formats(kind: str) -> tuple[str, ...]:
    """The formats a result kind renders to."""
    return tuple(key.split("/", 1)[1] for key in RENDERERS if key.startswith(f"{kind}/"))


def render(result: Result, fmt: str, **options: Any) -> str:
    """``result`` in format ``fmt`` (``options``, e.g. ``fail_on``, go to renderers that take them)."""
    return lookup(RENDERERS, f"{result.kind}/{fmt}", "renderer")(result, **options)
