"""A confirm run's settings-grid point (MCT: bias correction; ONNX Runtime: calibration method) in words, for
every renderer of confirm results (text, Markdown, HTML, figures)."""
from __future__ import annotations

from typing import Any


def point_of(row: dict[str, Any]) -> dict[str, Any]:
    """A run's (or export's) settings-grid point; JSON from before quantizers other than MCT had only
    ``bias_correction``."""
    return row.get("settings") or row.get("grid_point") or {"bias_correction": row["bias_correction"]}


def point_title(point: dict[str, Any]) -> str:
    """The grid's axes as a column title: ``bias correction``, ``calibration``."""
    return ", ".join(axis.replace("_", " ") for axis in point)


def point_value(point: dict[str, Any]) -> str:
    """The point's values in words: ``on`` / ``off`` for booleans, the value otherwise (``minmax``)."""
    return ", ".join(("on" if v else "off") if isinstance(v, bool) else str(v) for v in point.values())


def point_words(point: dict[str, Any]) -> str:
    """``bias correction on`` / ``calibration minmax``."""
    return ", ".join(f"{axis.replace('_', ' ')} {point_value({axis: v})}" for axis, v in point.items())
