"""repcurate's version, from the installed package's metadata (one source: pyproject.toml)."""
from __future__ import annotations

import importlib.metadata


def version() -> str:
    """The installed repcurate distribution's version (``0+unknown`` when it is not installed)."""
    try:
        return importlib.metadata.version("repcurate")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path without an install
        return "0+unknown"


__version__ = version()
