"""Reading cache files defensively: regular files only, sizes bounded, contents checked against a checksum.

A cache folder is ordinary user-writable disk: a file in it may be truncated, overwritten in place, replaced by a
FIFO or a symlink to a device. Nothing read from it is trusted: it is opened without blocking and used only when it
is a regular file of a plausible size, and its bytes are compared with the checksum stored when it was written.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

#: The checksum of cached bytes: SHA-256 runs on the CPU's SHA extension where there is one (1.5 GB/s on the
#: benchmark machine, three times BLAKE2b there), so verifying a warm entry costs well under decoding it.
CHECKSUM = "sha256"


class DamagedCacheFile(Exception):
    """A cache file that must not be used: not a regular file, an implausible size, or content that fails its
    checksum. The message is the reason."""


def checksum(data: object) -> str:
    """``"sha256:<hex>"`` of ``data`` (bytes or any C-contiguous buffer, e.g. a numpy array)."""
    return f"{CHECKSUM}:{hashlib.sha256(data).hexdigest()}"  # type: ignore[arg-type]


def verify(data: object, expected: object) -> None:
    """Raise :class:`DamagedCacheFile` unless ``data`` has the checksum ``expected`` (as :func:`checksum` gives)."""
    if not isinstance(expected, str) or not expected.startswith(f"{CHECKSUM}:"):
        raise DamagedCacheFile(f"no {CHECKSUM} checksum recorded")
    if checksum(data) != expected:
        raise DamagedCacheFile("content does not match its checksum")


def open_regular(path: Path, *, max_bytes: int) -> BinaryIO:
    """Open ``path`` for reading without blocking (a FIFO never hangs the open) and return it only when it is a
    regular file of at most ``max_bytes`` bytes; else :class:`DamagedCacheFile`. FileNotFoundError passes through."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DamagedCacheFile("not a regular file")
        if info.st_size > max_bytes:
            raise DamagedCacheFile(f"{info.st_size} bytes, more than the {max_bytes} such a file can hold")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def irregular(path: Path) -> bool:
    """True when something other than a regular file (following symlinks) is at ``path``: a FIFO, a socket, a
    device, a folder, a dangling link. False when nothing is there or a regular file is."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return os.path.islink(path)
    except OSError:
        return True
