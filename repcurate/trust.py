"""Code named by a data file (a set's ``manifest.json``, a check JSON) runs only with an explicit opt-in.

A set is a shareable artifact (CI artifacts, colleagues' folders): its manifest records the specs of the
model and preprocessing it was built with (``file.py:name`` or ``module:name``), but nothing on the
command line named that code. repcurate runs code named on the command line (``--model``,
``--preprocess``, ``--eval-preprocess``) and its own bundled model and preprocessing; any other recorded
spec runs only with ``--trust-set`` (library: ``trust_set=True``), like ``trust_remote_code``, and is
echoed on stderr when it does.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from repcurate.errors import UsageError
from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME

log = logging.getLogger("repcurate")

#: Specs of repcurate's own code: always allowed, whoever named them.
BUNDLED_SPECS = frozenset({DEFAULT_MODEL_NAME, f"{DEFAULT_MODEL_NAME}:preprocess"})
#: repcurate's own sized preprocessings (``repcurate.data.geometry:letterbox_640``), e.g. an Ultralytics checkpoint's.
GEOMETRY_SPEC = re.compile(r"repcurate\.data\.geometry:(letterbox|resize)_\d{1,5}(x\d{1,5})?")
#: Model files that are pickles (loading one runs code): named by a set, they load only with the opt-in.
PICKLE_SUFFIXES = (".pt", ".pth")


def is_bundled(spec: Any) -> bool:
    """Whether ``spec`` names repcurate's bundled model or its preprocessing, one of its own sized letterbox /
    resize preprocessings (or nothing at all)."""
    return spec is None or spec in BUNDLED_SPECS or (isinstance(spec, str) and GEOMETRY_SPEC.fullmatch(spec) is not None)


def names_code(spec: Any) -> bool:
    """Whether a recorded ``spec`` could be loaded as code or a model file (``file.py:name``, ``module:name``,
    ``.keras`` / ``.h5``, a pickled ``.pt`` checkpoint); other recorded names (a Python object's) cannot run at all."""
    return isinstance(spec, str) and (":" in spec or spec.lower().endswith((".keras", ".h5", ".hdf5", *PICKLE_SUFFIXES)))


def manifest_label(directory: str | Path | None) -> str:
    """How messages name a set's manifest: ``DIR/manifest.json``, or the in-memory set."""
    return str(Path(directory) / "manifest.json") if directory is not None else "the set's manifest"


def allowed(spec: Any, trust_set: bool) -> bool:
    """Whether a recorded ``spec`` may run: repcurate's own code always, anything else with the opt-in."""
    return is_bundled(spec) or trust_set or not names_code(spec)


def refusal(origin: str, field: str, spec: Any, option: str) -> UsageError:
    """The one-line error for recorded code that would run without the opt-in (exit 2)."""
    return UsageError(f"{origin}: {field} {spec!r} is code named by the set, not by you; "
                      f"fix: pass {option} SPEC, or --trust-set to run it")


def require(origin: str, field: str, spec: Any, option: str, *, trust_set: bool) -> None:
    """Raise :func:`refusal` unless ``spec`` may run (checked up front, before any heavy work)."""
    if not allowed(spec, trust_set):
        raise refusal(origin, field, spec, option)


def announce(field: str, spec: Any) -> None:
    """Say on stderr that code recorded in the set is about to run (a progress line: `-q` silences it)."""
    log.info("running code recorded in the set: %s = %s (--trust-set)", field, spec)
