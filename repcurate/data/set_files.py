"""Files named by data (a set's manifest, a check JSON): confined to their recorded root and read only when
their content matches the recorded fingerprint.

A manifest is shareable data: its ``root`` and sample ``path`` values are not trusted to point where the
set was built. A sample path must be a relative POSIX path without ``..`` (no absolute or drive form); the
file it names is read once, hashed as :func:`repcurate.data.scan.fingerprint_file` hashes it, and used (decoded,
shown, embedded) only when the hash equals the ``content_fingerprint`` recorded for it. Only regular files
are opened (a device or FIFO would never end), and never more bytes than the size recorded for the sample
at build (a larger file is not the one selected). Symlinks below the root are followed, as ``scan`` follows
them when the set is built: the fingerprint, not the location, is what proves a file is the one selected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from repcurate.data.images import DEFAULT_MAX_PIXELS, DecodedImage, DecodeError, decode_image
from repcurate.data.scan import content_fingerprint
from repcurate.io.safe_read import UnsafeFile, read_bytes
from repcurate.io.sample_paths import unsafe_path_reason


def read_verified(root: Path, path: str, fingerprint: Any, *, size_bytes: Any = None) -> bytes:
    """The bytes of ``root / path`` when ``path`` is confined and the content matches ``fingerprint``;
    else :class:`DecodeError` with reason ``unsafe_path``, ``unreadable``, ``not_a_regular_file``, ``too_large`` or
    ``content_changed``. ``size_bytes``: the size recorded for the file at build (a positive integer); a larger
    file is refused (``content_changed``) without being read, so a swapped-in huge file costs nothing. Without a
    recorded size, reads stop at the image cap (:mod:`repcurate.io.safe_read`)."""
    reason = unsafe_path_reason(path)
    if reason is not None:
        raise DecodeError("unsafe_path", f"{path!r} {reason}")
    recorded = size_bytes if isinstance(size_bytes, int) and not isinstance(size_bytes, bool) and size_bytes > 0 else None
    try:
        data = read_bytes(Path(root) / path, "image", limit=recorded)
    except UnsafeFile as exc:
        if exc.reason == "too_large" and recorded is not None:
            raise DecodeError("content_changed", f"the file is larger than the {recorded} bytes recorded for it at "
                                                 "build: it is not the file selected") from None
        raise DecodeError("unreadable" if exc.reason == "not_found" else exc.reason, exc.detail) from None
    if content_fingerprint(data) != fingerprint:
        raise DecodeError("content_changed", "the file's content does not match the fingerprint recorded for it")
    return data


def decode_verified(root: Path, path: str, fingerprint: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                    draft: tuple[int, int] | None = None, size_bytes: Any = None) -> DecodedImage:
    """:func:`decode_image` of the bytes :func:`read_verified` returns (one read: no swap between check and use)."""
    return decode_image(read_verified(root, path, fingerprint, size_bytes=size_bytes), max_pixels=max_pixels,
                        draft=draft)
