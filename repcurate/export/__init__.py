"""``repcurate export``: a set as the files a toolchain's own tool reads (one registry of exporters)."""
from __future__ import annotations

from repcurate.export.run import ExportResult, export_set

__all__ = ["ExportResult", "export_set"]
