"""The cache folder's upkeep: what it holds, a size cap kept by least-recently-used eviction, removal of the files of
earlier cache versions, and the lock that lets concurrent runs read, write and prune it safely.

The folder (``--cache-dir``, default :func:`repcurate.embed.cache.default_cache_dir`) holds

* ``embeddings``: one SQLite database per model + preprocessing (``emb-v2-*.sqlite`` with its ``-wal`` / ``-shm``);
* ``tensors``: preprocessed tensors, one ``.npy`` + ``.json`` entry per load, in ``tensors-v2-*/`` folders;
* ``quarantined``: damaged databases moved aside (``*.corrupt-*``), kept for inspection until evicted;
* ``old-version``: files of earlier cache layouts (``emb-*.sqlite`` without ``v2``, ``tensors-*.sqlite``,
  ``tensors-<hash>/``), which this version never reads: always removed by upkeep.

Anything else in the folder is left alone. The cap is ``$REPCURATE_CACHE_MAX`` (default 4 GiB, ``none`` for no cap):
after each write, entries are removed least recently used first (quarantined files before anything) until the folder
is under it. A run reading an embedding database holds a shared lock on the folder's lock file for as long as it has
the database open; eviction removes a database only under the exclusive lock, taken without waiting, so a database in
use is never removed (it is skipped and reported). Tensor entries are removed without the lock: a reader that has
mapped an entry keeps its data, and one that finds it gone or half gone decodes again.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from repcurate.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking (documented as unsupported for concurrent runs)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("repcurate")

#: The cap when ``$REPCURATE_CACHE_MAX`` is not set.
DEFAULT_MAX_BYTES = 4 * 2**30
#: The environment variable that sets the cap (a size such as ``4G``, ``500M``, ``0``, or ``none``).
ENV_MAX = "REPCURATE_CACHE_MAX"
#: Held shared by every open embedding database, exclusively while eviction removes databases. Never removed.
LOCK_NAME = ".repcurate-cache.lock"
#: Held exclusively by a prune, so two prunes never evict the same room twice.
PRUNE_LOCK_NAME = ".repcurate-prune.lock"
#: Versioned name prefixes of the current layout (see :mod:`repcurate.embed.cache` and :mod:`.tensor_cache`).
EMBEDDINGS_PREFIX = "emb-v2-"
TENSORS_PREFIX = "tensors-v2-"
#: The kinds of :class:`CacheItem`, in the order :class:`CacheInfo` lists them.
KINDS = ("embeddings", "tensors", "quarantined", "old-version")

_DATABASE = re.compile(rf"(?P<db>{re.escape(EMBEDDINGS_PREFIX)}.+\.sqlite)(-wal|-shm)?")
_QUARANTINED = re.compile(r".+\.sqlite\.corrupt-.+")
_OLD_FILE = re.compile(r"(emb|tensors)-.+\.sqlite(-wal|-shm)?")
_OLD_FOLDER = re.compile(r"tensors-[0-9a-f]{8,}")
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*(?P<number>[0-9]+(\.[0-9]+)?)\s*(?P<unit>[KMGT]?)(I?B)?\s*", re.IGNORECASE)
_warned: set[str] = set()


def tensor_folder_name(preprocessing_fingerprint: str) -> str:
    """The folder of the tensor entries of one preprocessing."""
    return f"{TENSORS_PREFIX}{preprocessing_fingerprint[:32]}"


def embedding_file_name(model_fingerprint: str, preprocessing_fingerprint: str) -> str:
    """The embedding database of one model + preprocessing."""
    return f"{EMBEDDINGS_PREFIX}{model_fingerprint[:16]}-{preprocessing_fingerprint[:16]}.sqlite"


def parse_size(text: str) -> int | None:
    """Bytes of a size such as ``4G``, ``4GiB``, ``500M``, ``1.5G``, ``1048576`` (K/M/G/T are powers of 1024);
    None for ``none`` (no cap). ValueError for anything else."""
    if text.strip().lower() == "none":
        return None
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size")
    return int(float(match["number"]) * _UNITS[match["unit"].upper()])


def format_size(size: int) -> str:
    """``1.2 GiB``, ``340.0 MiB``, ``12 B``."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def cache_max_bytes() -> int | None:
    """The cap: ``$REPCURATE_CACHE_MAX`` (None: no cap), else :data:`DEFAULT_MAX_BYTES`; :class:`UsageError` for a
    value that is not a size."""
    value = os.environ.get(ENV_MAX)
    if value is None or not value.strip():
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(value)
    except ValueError:
        raise UsageError(f"{ENV_MAX}={value!r} is not a size; fix: set it to e.g. 4G, 500M or none (no cap)") from None


@dataclass(frozen=True)
class CacheItem:
    """One removable unit of the cache: a database with its WAL files, a tensor entry (array + index), a
    quarantined file, or a file or folder of an earlier version."""

    kind: str
    paths: tuple[Path, ...]
    size: int
    last_used: float


@dataclass
class CacheInfo:
    """What a cache folder holds (:func:`cache_info`)."""

    directory: Path
    items: list[CacheItem] = field(default_factory=list)
    #: Files and folders repcurate does not manage (never removed), with their total size.
    other: list[Path] = field(default_factory=list)
    other_size: int = 0

    @property
    def size(self) -> int:
        """Bytes of the cache's own items (what the cap counts)."""
        return sum(item.size for item in self.items)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """Kind → (items, bytes), every kind listed."""
        return {kind: (sum(1 for i in self.items if i.kind == kind), sum(i.size for i in self.items if i.kind == kind))
                for kind in KINDS}

    def to_dict(self) -> dict[str, object]:
        return {"directory": str(self.directory), "bytes": self.size, "max_bytes": _cap_or_default(),
                "kinds": {kind: {"items": n, "bytes": size} for kind, (n, size) in self.by_kind().items()},
                "other": {"items": len(self.other), "bytes": self.other_size}}


@dataclass
class PruneResult:
    """What :func:`prune` removed and kept."""

    directory: Path
    max_bytes: int | None
    before: int
    removed: list[CacheItem] = field(default_factory=list)
    #: Databases over the cap that stayed because a run had them open.
    in_use: list[CacheItem] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(item.size for item in self.removed)

    @property
    def after(self) -> int:
        return self.before - self.freed

    def to_dict(self) -> dict[str, object]:
        kinds = {kind: {"items": sum(1 for i in self.removed if i.kind == kind),
                        "bytes": sum(i.size for i in self.removed if i.kind == kind)} for kind in KINDS}
        return {"directory": str(self.directory), "max_bytes": self.max_bytes, "bytes_before": self.before,
                "bytes_freed": self.freed, "bytes_after": self.after, "removed": kinds,
                "in_use": [str(item.paths[0]) for item in self.in_use]}


def _cap_or_default() -> int | None:
    try:
        return cache_max_bytes()
    except UsageError:
        return DEFAULT_MAX_BYTES


def _size(path: Path) -> tuple[int, float]:
    """Bytes and latest modification time of a file, or of every file under a folder (links not followed)."""
    info = path.lstat()
    if not path.is_dir() or path.is_symlink():
        return info.st_size, info.st_mtime
    size, latest = 0, info.st_mtime
    for parent, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                child = Path(parent, name).lstat()
                size += child.st_size
                latest = max(latest, child.st_mtime)
    return size, latest


def _tensor_entries(folder: Path, info: CacheInfo) -> None:
    groups: dict[str, list[Path]] = {}
    for entry in folder.iterdir():
        stem, suffix = os.path.splitext(entry.name)
        if entry.name.startswith(".") or suffix not in (".npy", ".json"):
            info.other.append(entry)
            with contextlib.suppress(OSError):
                info.other_size += _size(entry)[0]
            continue
        groups.setdefault(stem, []).append(entry)
    for stem, paths in groups.items():
        index = folder / f"{stem}.json"
        ordered = tuple(sorted(paths, key=lambda p: p.suffix != ".json"))  # index first: removed first
        sizes = []
        for path in ordered:
            with contextlib.suppress(OSError):
                sizes.append(_size(path))
        if not sizes:
            continue
        used = next((mtime for p, (_, mtime) in zip(ordered, sizes) if p == index), max(m for _, m in sizes))
        info.items.append(CacheItem("tensors", ordered, sum(s for s, _ in sizes), used))


def cache_info(directory: Path) -> CacheInfo:
    """What ``directory`` holds, by kind (:data:`KINDS`); a missing folder holds nothing."""
    directory = Path(directory)
    info = CacheInfo(directory)
    try:
        entries = sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return info
    databases: dict[str, list[Path]] = {}
    for entry in entries:
        name = entry.name
        if name in (LOCK_NAME, PRUNE_LOCK_NAME):
            continue
        is_folder = entry.is_dir() and not entry.is_symlink()
        kind = None
        try:
            if is_folder and name.startswith(TENSORS_PREFIX):
                _tensor_entries(entry, info)
                continue
            if not is_folder and (match := _DATABASE.fullmatch(name)):
                databases.setdefault(match["db"], []).append(entry)
                continue
            if not is_folder and _QUARANTINED.fullmatch(name):
                kind = "quarantined"
            elif (not is_folder and _OLD_FILE.fullmatch(name)) or (is_folder and _OLD_FOLDER.fullmatch(name)):
                kind = "old-version"
            size, used = _size(entry)
        except OSError:
            continue  # removed meanwhile by another run
        if kind is None:
            info.other.append(entry)
            info.other_size += size
        else:
            info.items.append(CacheItem(kind, (entry,), size, used))
    for name, paths in databases.items():
        sizes = []
        for path in paths:
            with contextlib.suppress(OSError):
                sizes.append(_size(path))
        if sizes:
            main = directory / name
            info.items.append(CacheItem("embeddings", (main, Path(f"{main}-wal"), Path(f"{main}-shm")),
                                        sum(s for s, _ in sizes), max(m for _, m in sizes)))
    return info


def _remove(item: CacheItem) -> bool:
    """Remove an item's files (a folder whole); False when something could not be removed."""
    done = True
    for path in item.paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError:
            done = False
    return done


def _lock(path: Path, operation: int) -> int | None:
    """A descriptor of ``path`` (created) holding ``flock(operation)``; None when it cannot be opened, or when
    ``operation`` is non-blocking and another holder has it."""
    if fcntl is None:
        return None
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device in its place: no lock rather than a hang
            raise OSError(f"{path} is not a regular file")
        fcntl.flock(fd, operation)
    except OSError:
        os.close(fd)
        return None
    return fd


def hold_shared(directory: Path) -> int | None:
    """Take the folder's shared lock (waiting while a prune removes databases): held by a run for as long as it
    has an embedding database of ``directory`` open. Returns the descriptor for :func:`release`, or None when the
    folder cannot hold a lock file (read-only: then nobody prunes it either)."""
    return _lock(Path(directory) / LOCK_NAME, fcntl.LOCK_SH if fcntl is not None else 0)


def release(fd: int | None) -> None:
    """Release a lock :func:`hold_shared` took."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


@contextlib.contextmanager
def _held(fd: int | None) -> Iterator[int | None]:
    try:
        yield fd
    finally:
        release(fd)


def prune(directory: Path, max_bytes: int | None) -> PruneResult:
    """Remove earlier versions' files, then items least recently used first (quarantined files first of all) until
    the cache's items take at most ``max_bytes`` (None: no cap). Databases that a run has open are kept and listed
    in :attr:`PruneResult.in_use`. Safe beside other runs reading, writing and pruning the same folder."""
    directory = Path(directory)
    flags = fcntl.LOCK_EX if fcntl is not None else 0
    with _held(_lock(directory / PRUNE_LOCK_NAME, flags) if directory.is_dir() else None):
        info = cache_info(directory)
        result = PruneResult(directory, max_bytes, info.size)
        current = []
        for item in info.items:
            if item.kind == "old-version":
                if _remove(item):
                    result.removed.append(item)
            else:
                current.append(item)
        total = sum(item.size for item in current)
        database_lock: int | None = None
        tried_lock = False
        try:
            for item in sorted(current, key=lambda i: (i.kind != "quarantined", i.last_used, str(i.paths[0]))):
                if max_bytes is None or total <= max_bytes:
                    break
                if item.kind == "embeddings":
                    if not tried_lock and fcntl is not None:
                        tried_lock = True
                        database_lock = _lock(directory / LOCK_NAME, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if database_lock is None:
                        result.in_use.append(item)
                        continue
                if _remove(item):
                    total -= item.size
                    result.removed.append(item)
        finally:
            release(database_lock)
    return result


def enforce_cap(directory: Path) -> None:
    """Keep ``directory`` under the cap (:func:`cache_max_bytes`) after a write; never raises (a cache only saves
    work), logs what it removed."""
    try:
        cap = cache_max_bytes()
    except UsageError as exc:
        if str(exc) not in _warned:
            _warned.add(str(exc))
            log.warning("%s; keeping the default cap %s", exc, format_size(DEFAULT_MAX_BYTES))
        cap = DEFAULT_MAX_BYTES
    try:
        result = prune(directory, cap)
    except OSError as exc:
        log.info("cache upkeep of %s skipped (%s)", directory, exc)
        return
    old = [item for item in result.removed if item.kind == "old-version"]
    if old:
        log.info("cache: removed %d files of an earlier cache version (%s)", len(old),
                 format_size(sum(i.size for i in old)))
    evicted = [item for item in result.removed if item.kind != "old-version"]
    if evicted:
        log.info("cache: removed %d least recently used entries (%s) to stay under %s", len(evicted),
                 format_size(sum(i.size for i in evicted)), format_size(cap or 0))
