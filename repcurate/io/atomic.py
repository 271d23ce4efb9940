"""Atomic, deterministic output: a directory appears complete or not at all.

Work happens in hidden siblings named ``.<out>.tmp-<host>-<pid>-<random>`` (the new output) and
``.<out>.old-<host>-<pid>-<random>`` (the output being replaced). A run killed with SIGKILL leaves them
behind; the next write to the same output removes those of this host whose process is gone, and puts a
replaced output back when it was moved aside but its replacement never arrived.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.io.outputs import absolute, ensure_writable_target
from repcurate.io.signals import deferred_signals, pause_for_tests
from repcurate.io.space import out_of_space, require_free_space

log = logging.getLogger("repcurate")

#: Fixed zip entry timestamp, so the same arrays always give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def json_bytes(obj: Any) -> bytes:
    """Stable JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` archive (readable by ``np.load``) with fixed timestamps and entry order.

    An exception (or Ctrl-C) part-way leaves the archive unfinished, without a second error from zipfile's
    close masking the first: the caller removes the file."""
    with open(path, "wb") as raw:
        archive = zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        try:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                with archive.open(info, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.ascontiguousarray(arrays[name]), allow_pickle=False)
        except BaseException:
            archive.fp = None  # abandon the archive: no end records, no second error from close()
            raise
        archive.close()


#: This host, short: staging names carry it so a shared folder (NFS) never sees another host's live run as stale.
HOST_TAG = hashlib.blake2b(socket.gethostname().encode("utf-8", "backslashreplace"), digest_size=4).hexdigest()
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[^-]+$")


def staging_prefix(name: str, kind: str) -> str:
    """Prefix of this process's hidden sibling of output ``name`` (``kind``: ``tmp`` new output, ``old`` replaced one)."""
    return f".{name}.{kind}-{HOST_TAG}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale_staging(out: Path) -> list[Path]:
    """Remove the hidden siblings of ``out`` left by runs of this host that died (SIGKILL, power loss); a
    replaced ``out`` found moved aside while ``out`` is missing is put back. Returns what was removed."""
    parent = out.parent
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING.match(entry.name)
        if (match is None or match["name"] != out.name or match["host"] != HOST_TAG or _alive(int(match["pid"]))):
            continue
        retired = entry / out.name
        if match["kind"] == "old" and retired.exists() and not out.exists() and not out.is_symlink():
            os.replace(retired, out)
            log.warning("restored %s, which an interrupted run had moved aside to %s", out, entry)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted run", entry)
        removed.append(entry)
    return removed


#: Outputs this process published completely (directories and files), in order: a signal that stops the run
#: afterwards is reported with them (they are kept: complete, see ``repcurate_cli``'s exit handling).
COMMITTED: list[Path] = []


def _restore(retired: Path | None, out: Path) -> None:
    """Put back an output moved aside into ``retired`` when nothing replaced it, then remove ``retired``."""
    if retired is None:
        return
    moved = retired / out.name
    if (moved.exists() or moved.is_symlink()) and not out.exists() and not out.is_symlink():
        os.replace(moved, out)
    shutil.rmtree(retired, ignore_errors=True)


def _staged_bytes(staging: Path | None) -> int:
    """Bytes written into a staging folder so far."""
    if staging is None:
        return 0
    try:
        return sum(entry.stat().st_size for entry in staging.iterdir())
    except OSError:
        return 0


def write_directory(out: Path, files: dict[str, bytes | Callable[[Path], None]], *, overwrite: bool,
                    expected_bytes: int = 0) -> None:
    """Write ``files`` (name → bytes, or a writer given the path, which may leave it unwritten) into ``out``
    atomically.

    Everything goes to a temporary sibling directory first, which is renamed into place; an old
    ``out`` is replaced only after the new one is complete. ``expected_bytes``: what the writers will write
    (bytes given are counted here); a filesystem without that much room is refused before writing, and a full
    disk met while writing is :class:`~repcurate.errors.OutOfSpaceError` (exit 5), staging removed.
    """
    out = absolute(out)
    ensure_writable_target(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_staging(out)
    needed = expected_bytes + sum(len(content) for content in files.values() if isinstance(content, bytes))
    require_free_space(out, needed, option="")
    staging: Path | None = None
    retired: Path | None = None
    try:
        with deferred_signals():  # a signal between mkdtemp and the assignment would orphan the folder
            staging = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name, "tmp"), dir=out.parent))
        for name, content in files.items():
            target = staging / name
            if callable(content):
                content(target)
                if not target.exists():  # a writer may decide there is nothing to write
                    continue
            else:
                target.write_bytes(content)
            with target.open("rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(staging, 0o755)
        for undo_on_signal in (True, False):
            with deferred_signals() as held:
                ensure_writable_target(out, overwrite=overwrite)  # again: the folder may have changed during the work
                if out.exists():
                    retired = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name, "old"), dir=out.parent))
                    os.replace(out, retired / out.name)
                pause_for_tests("between-renames")
                os.replace(staging, out)
                undone = bool(held) and undo_on_signal
                if undone:  # Ctrl-C / SIGTERM came during these steps: undo them, nothing is published
                    os.replace(out, staging)
                    _restore(retired, out)
                    retired = None
            # a held signal is raised on leaving the block (the run stops); a handler that does not raise lets the
            # second pass publish after all
            if not undone:
                break
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        COMMITTED.append(out)
        pause_for_tests("after-commit")
    except BaseException as exc:
        written = _staged_bytes(staging)
        _restore(retired, out)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        full = out_of_space(exc, out, max(needed, written))
        if full is not None:
            raise full from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file via a temporary sibling and a rename (never half-written)."""
    path = absolute(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_staging(path)
    data = text.encode("utf-8")
    require_free_space(path, len(data), option="")
    staging: str | None = None
    try:
        with deferred_signals():  # a signal between mkstemp and the assignment would orphan the file
            handle, staging = tempfile.mkstemp(prefix=staging_prefix(path.name, "tmp"), dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, 0o644)
        os.replace(staging, path)
        COMMITTED.append(path)
    except BaseException as exc:
        if staging is not None:
            Path(staging).unlink(missing_ok=True)
        full = out_of_space(exc, path, len(data))
        if full is not None:
            raise full from None
        raise
