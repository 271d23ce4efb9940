"""Atomic, deterministic output: a directory appears complete or not at all."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import UsageError

#: Fixed zip entry timestamp, so the same arrays always give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def json_bytes(obj: Any) -> bytes:
    """Stable JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` archive (readable by ``np.load``) with fixed timestamps and entry order."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(arrays[name]), allow_pickle=False)


def ensure_writable_target(out: Path, *, overwrite: bool) -> None:
    """Refuse early (before any work) when ``out`` exists, is not empty and may not be replaced."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; fix: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out}: output directory is not empty; fix: pass --overwrite or choose another --out")


def write_directory(out: Path, files: dict[str, bytes | Callable[[Path], None]], *, overwrite: bool) -> None:
    """Write ``files`` (name → bytes, or a writer given the path) into ``out`` atomically.

    Everything goes to a temporary sibling directory first, which is renamed into place; an old
    ``out`` is replaced only after the new one is complete.
    """
    out = Path(out)
    ensure_writable_target(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, content in files.items():
            target = staging / name
            if callable(content):
                content(target)
            else:
                target.write_bytes(content)
            with target.open("rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(staging, 0o755)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file via a temporary sibling and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
