"""Code named by a data file (a set's ``manifest.json``, a check JSON) runs only with an explicit opt-in.

A set is a shareable artifact (CI artifacts, colleagues' folders): its manifest records the specs of the
model and preprocessing it was built with (``file.py:name`` or ``module:name``), but nothing on the
command line named that code. repcurate runs code named on the command line (``--model``,
``--preprocess``, ``--eval-preprocess``) and its own bundled model and preprocessing; any other recorded
spec runs only with ``--trust-set`` (library: ``trust_set=True``), like ``trust_remote_code``, and is
echoed on stderr when it does.

Sets you built yourself need no opt-in: ``build`` signs the exact bytes of ``manifest.json`` with HMAC-SHA256 under a
per-user key (``signing.key`` in the user cache folder, created 0600 on first use, never written into a set) and
stores the signature beside it as ``manifest.sig``. A set whose signature verifies under this user's key is trusted
as if ``--trust-set`` were given; a set from elsewhere, or edited since, is not. ``manifest.json`` itself is
unchanged (same inputs and seed, same bytes).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

from repcurate.errors import UsageError
from repcurate.repset import MANIFEST_NAME, SIGNATURE_NAME
from repcurate.spec import DEFAULT_MODEL_NAME

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


#: The per-user signing key's file name, in the user cache folder (never in a set).
KEY_NAME = "signing.key"
_KEY_BYTES = 32
_SCHEME = b"hmac-sha256 "


def key_path() -> Path:
    """The per-user signing key: ``$REPCURATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/repcurate``, else
    ``~/.cache/repcurate``, then ``signing.key`` (the default cache folder; ``--cache-dir`` does not move it)."""
    folder = os.environ.get("REPCURATE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "repcurate")
    return Path(folder) / KEY_NAME


def _read_key(path: Path) -> bytes | None:
    """The key at ``path`` when it is a regular file of this user, readable by nobody else, of the right length."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077
                or info.st_size != _KEY_BYTES):
            log.warning("%s: not used as the set-signing key (must be this user's own %d-byte file, mode 0600)",
                        path, _KEY_BYTES)
            return None
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    return key if len(key) == _KEY_BYTES else None


def signing_key(*, create: bool) -> bytes | None:
    """This user's set-signing key (see :func:`key_path`); with ``create``, made on first use (random, 0600).
    None when there is none (or it cannot be made or is unsafe: sets are then simply not signed / not trusted)."""
    path = key_path()
    key = _read_key(path)
    if key is not None or not create or path.exists() or path.is_symlink():
        return key
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another run made it just now
        return _read_key(path)
    except OSError as exc:
        log.debug("cannot create the set-signing key %s (%s): sets are not signed", path, exc)
        return None
    try:
        os.write(fd, secrets.token_bytes(_KEY_BYTES))
    finally:
        os.close(fd)
    return _read_key(path)


def _signature(key: bytes, manifest_bytes: bytes) -> bytes:
    return _SCHEME + hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest().encode("ascii") + b"\n"


def sign_manifest(manifest_bytes: bytes) -> bytes | None:
    """The content of ``manifest.sig`` for these exact manifest bytes, under this user's key (made on first use);
    None when no key can be had."""
    key = signing_key(create=True)
    return None if key is None else _signature(key, manifest_bytes)


def signed_by_this_user(directory: str | Path | None) -> bool:
    """Whether ``directory``'s ``manifest.json`` carries a ``manifest.sig`` that verifies under this user's key
    (it was built here, by this user, and not edited since)."""
    if directory is None:
        return False
    key = signing_key(create=False)
    if key is None:
        return False
    try:
        manifest_bytes = (Path(directory) / MANIFEST_NAME).read_bytes()
        recorded = (Path(directory) / SIGNATURE_NAME).read_bytes()[:256]
    except OSError:
        return False
    return hmac.compare_digest(recorded, _signature(key, manifest_bytes))


def effective_trust(trust_set: bool, directory: str | Path | None) -> bool:
    """``trust_set``, or True when the set in ``directory`` was signed by this user (see the module docstring);
    said on stderr when the signature is what trusts it."""
    if trust_set:
        return True
    if signed_by_this_user(directory):
        log.info("%s: built by you (signature verified): the code it records may run", manifest_label(directory))
        return True
    return False


def manifest_label(directory: str | Path | None) -> str:
    """How messages name a set's manifest: ``DIR/manifest.json``, or the in-memory set."""
    return str(Path(directory) / "manifest.json") if directory is not None else "the set's manifest"


def allowed(spec: Any, trust_set: bool) -> bool:
    """Whether a recorded ``spec`` may run: repcurate's own code always, anything else with the opt-in."""
    return is_bundled(spec) or trust_set or not names_code(spec)


def refusal(origin: str, field: str, spec: Any, option: str) -> UsageError:
    """The one-line error for recorded code that would run without the opt-in (exit 2)."""
    return UsageError(f"{origin}: {field} {spec!r} is code named by the set, not by you (the set is not signed by "
                      f"your key: built elsewhere or edited since); fix: pass {option} SPEC, or --trust-set to run it")


def require(origin: str, field: str, spec: Any, option: str, *, trust_set: bool) -> None:
    """Raise :func:`refusal` unless ``spec`` may run (checked up front, before any heavy work)."""
    if not allowed(spec, trust_set):
        raise refusal(origin, field, spec, option)


def announce(field: str, spec: Any) -> None:
    """Say on stderr that code recorded in the set is about to run (a progress line: `-q` silences it)."""
    log.info("running code recorded in the set: %s = %s", field, spec)
