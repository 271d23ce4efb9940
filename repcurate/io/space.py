"""Disk space: refuse an output up front when its filesystem cannot hold it, and turn a full disk (or a file-size
limit) met while writing into one plain line instead of ``OSError [Errno 28]``.

``build`` knows its set's size before the work (``--size`` x the bytes of one preprocessed sample), ``export`` before
it writes (the set's tensors); the atomic writers (:mod:`repcurate.io.atomic`) check what they are given and map
``ENOSPC`` / ``EDQUOT`` / ``EFBIG`` met while writing to :class:`~repcurate.errors.OutOfSpaceError` (exit 5), with the
staging files already removed.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from repcurate.errors import OutOfSpaceError

#: ``OSError`` numbers that mean "this output does not fit": no space, quota exceeded, file-size limit.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Room kept beyond an output's own bytes (file-system metadata, the manifest, reports written beside it).
MARGIN_BYTES = 1 << 20


def megabytes(size: int) -> str:
    """``size`` bytes as ``~X MB`` (at least 0.1)."""
    return f"~{max(size / 1e6, 0.1):.1f} MB"


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (an output's folder may not exist yet)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding ``path`` (how messages name the device)."""
    current = existing_parent(path)
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem (None when it cannot be asked)."""
    try:
        return shutil.disk_usage(existing_parent(path)).free
    except OSError:
        return None


def _fix(option: str) -> str:
    where = f"pass {option} on a disk with more room" if option else "write the output to a disk with more room"
    return f"fix: free space there, or {where}"


def require_free_space(target: Path, needed: int, *, option: str = "--out") -> None:
    """Raise :class:`OutOfSpaceError` (before any work) when ``target``'s filesystem has less room than ``needed``
    bytes plus a margin."""
    free = free_bytes(target)
    if free is not None and free < needed + MARGIN_BYTES:
        raise OutOfSpaceError(f"no space left on {mount_point(target)} for {option or 'the output'} {target} (needed "
                              f"{megabytes(needed)}, {megabytes(free)} free); {_fix(option)}")


def out_of_space(exc: BaseException, target: Path, needed: int | None, *, option: str = "") -> OutOfSpaceError | None:
    """The plain error for ``exc`` when it is a full disk / quota / file-size limit met writing ``target``
    (``needed``: its size when known), else None."""
    if not isinstance(exc, OSError) or exc.errno not in FULL_ERRNOS:
        return None
    size = f" (needed {megabytes(needed)})" if needed else ""
    what = f"{option} {target}" if option else str(target)
    if exc.errno == errno.EFBIG:
        return OutOfSpaceError(f"writing {what} passed this process's file-size limit{size}; fix: raise the limit "
                               "(ulimit -f unlimited) or write a smaller output")
    quota = " (disk quota exceeded)" if exc.errno == errno.EDQUOT else ""
    return OutOfSpaceError(f"no space left on {mount_point(target)}{quota} writing {what}{size}; {_fix(option)}")
