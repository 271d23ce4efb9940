"""Which sample paths a set may name: relative, below its root (used by the manifest schema and the set-file reader)."""
from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any


def unsafe_path_reason(path: Any) -> str | None:
    """Why ``path`` cannot name a file below a set's root (None when it can): not a non-empty string,
    absolute, a Windows drive or UNC form, a ``..`` component, or a NUL byte."""
    if not isinstance(path, str) or not path:
        return "is not a non-empty string"
    if "\x00" in path:
        return "contains a NUL byte"
    if path.startswith(("/", "\\")) or PurePosixPath(path).is_absolute() or PureWindowsPath(path).drive:
        return "is absolute (sample paths are relative to the set's root)"
    if ".." in path.replace("\\", "/").split("/"):
        return "has a '..' component (it would leave the set's root)"
    return None
