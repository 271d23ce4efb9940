"""On-disk embedding cache: one SQLite file per (model, preprocessing) pair, keyed by file content.

The cache only ever saves work, so it never ends a build: a corrupt or truncated database is moved
aside (``<name>.corrupt-<timestamp>``, with its ``-wal`` / ``-shm`` files) and a fresh one started;
a cache that cannot be used at all (the directory is a file, not writable, the disk is full, the
database stays locked) is reported once and the run goes on without it.

Every row carries the checksum of its vector's bytes, checked on read: a vector whose bytes changed in place is
not served (one warning) and is computed again and rewritten. A FIFO, device or dangling link in place of the
database or its ``-wal`` / ``-shm`` is removed (with a warning) before SQLite opens anything, so it never blocks.
While open, the database holds the cache folder's shared lock, so a concurrent prune never removes it
(:mod:`repcurate.embed.cache_folder`); closing it keeps the folder under its size cap.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from repcurate.embed.cache_files import checksum, irregular
from repcurate.embed.cache_folder import embedding_file_name, enforce_cap, hold_shared, release

log = logging.getLogger("repcurate")

SCHEMA = "CREATE TABLE IF NOT EXISTS embeddings (content TEXT PRIMARY KEY, dim INTEGER, vec BLOB, checksum TEXT)"
#: SQLite primary result codes that mean the file is damaged or not a database at all.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
#: SQLite primary result codes that mean another connection holds the database for now.
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: Seconds a writer waits for another process's transaction on the same cache (concurrent builds).
LOCK_TIMEOUT_S = 60
#: Messages already logged in this process: a build that opens the same cache twice warns once.
_warned: set[str] = set()


def default_cache_dir() -> Path:
    """``$REPCURATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/repcurate``, else ``~/.cache/repcurate``."""
    if env := os.environ.get("REPCURATE_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "repcurate"


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPT_CODES


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _BUSY_CODES


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


class EmbeddingCache:
    """Float32 vectors keyed by content fingerprint, for one model + preprocessing fingerprint.

    A changed file has a new content fingerprint and is re-embedded; a changed model or
    preprocessing opens a different database. ``enabled`` is False when the cache could not be
    used; then :meth:`get_many` finds nothing and :meth:`put_many` stores nothing.
    """

    #: The table this cache keeps (subclasses keep other rows in the same way).
    schema = SCHEMA
    #: How warnings name the cache.
    label = "embedding cache"
    #: The statement :meth:`put_many` runs once per :meth:`_row`.
    insert = "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)"

    def __init__(self, directory: Path, model_fingerprint: str, preprocessing_fingerprint: str) -> None:
        self._start(Path(directory) / embedding_file_name(model_fingerprint, preprocessing_fingerprint))

    def _start(self, path: Path) -> None:
        """Open (creating) the database at ``path``, or recover from what keeps it from opening."""
        self.path = path
        self.quarantined: Path | None = None
        self._db: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._lock: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = hold_shared(self.path.parent)  # before connecting: a prune never removes an open database
            self._open()
        except (OSError, sqlite3.Error) as exc:
            self._recover(exc)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def _open(self) -> None:
        """Connect, switch to WAL and create the table, retrying while another process holds the file.

        SQLite answers ``PRAGMA journal_mode=WAL`` (and WAL recovery) with SQLITE_BUSY at once, without
        its busy handler, when a concurrent build is creating or opening the same database; that is a
        wait, not a failure.
        """
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        pause = 0.01
        while True:
            try:
                self._connect()
                return
            except sqlite3.OperationalError as exc:
                self._close_quietly()
                if not _is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def _remove_irregular(self) -> None:
        """Remove a FIFO, socket, device or dangling link in place of the database or its WAL files (SQLite would
        block on it or read a device); with the database, its WAL files go too. A folder is left: SQLite refuses it."""
        sides = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        main_gone = False
        for side in sides:
            if (main_gone and side.exists()) or (irregular(side) and not side.is_dir()):
                side.unlink(missing_ok=True)
                main_gone = main_gone or side == self.path
                _warn_once(f"{self.label} {side} was not a regular file; removed it")

    def _connect(self) -> None:
        self._remove_irregular()
        self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        try:
            os.utime(self.path)  # used now: the least recently used databases are evicted first
        except OSError:
            pass
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(self.schema)
        self._db.commit()

    def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def _disable(self, exc: BaseException) -> None:
        self._close_quietly()
        release(self._lock)  # nothing open to protect from a prune
        self._lock = None
        _warn_once(f"{self.label} {self.path} unusable ({_reason(exc)}); running without the cache")

    def _recover(self, exc: BaseException) -> None:
        """After ``exc``: quarantine a corrupt database and start a fresh one, or run without the cache."""
        if not (isinstance(exc, sqlite3.Error) and _is_corrupt(exc)):
            self._disable(exc)
            return
        self._close_quietly()
        try:
            moved = self._quarantine()
            self._open()
        except (OSError, sqlite3.Error) as again:
            self._disable(again)
            return
        if moved is not None:
            _warn_once(f"{self.label} {self.path} is corrupt ({_reason(exc)}); moved it to {moved} "
                       "and started a fresh cache")

    def _quarantine(self) -> Path | None:
        """Rename the damaged database (and its WAL files) aside; None when another process already did."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        if self._identity is not None and (stat.st_dev, stat.st_ino) != self._identity:
            return None  # a concurrent build replaced it already: use the new one
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        if target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                os.replace(side, Path(f"{target}{suffix}"))
        self.quarantined = target
        return target

    def _select(self, unique: list[str]) -> dict[str, np.ndarray]:
        assert self._db is not None
        found: dict[str, np.ndarray] = {}
        damaged = 0
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, dim, blob, digest in self._db.execute(
                f"SELECT content, dim, vec, checksum FROM embeddings WHERE content IN ({marks})", chunk
            ):
                if not isinstance(blob, bytes) or len(blob) % 4 or digest != checksum(blob):
                    damaged += 1
                    continue
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim and np.isfinite(vec).all():
                    found[key] = vec
        if damaged:
            _warn_once(f"{self.label} {self.path}: {damaged} cached vectors do not match their checksum; "
                       "computing them again")
        return found

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached (finite) vectors among ``keys``; nothing when the cache is unusable."""
        if self._db is None:
            return {}
        unique = sorted(set(keys))
        try:
            return self._select(unique)
        except sqlite3.Error as exc:
            self._recover(exc)
        return {}

    def put_many(self, items: list[tuple[str, np.ndarray]]) -> None:
        """Store vectors (one transaction); a damaged cache is replaced and the write tried once more."""
        rows = [self._row(k, v) for k, v in items]
        for _attempt in range(2):
            if self._db is None:
                return
            try:
                with self._db:
                    self._db.executemany(self.insert, rows)
                return
            except sqlite3.Error as exc:
                self._recover(exc)

    def _row(self, key: str, value: np.ndarray) -> tuple[object, ...]:
        blob = np.ascontiguousarray(value, dtype=np.float32).tobytes()
        return key, int(value.shape[0]), blob, checksum(blob)

    def close(self) -> None:
        """Close the database, release the folder's lock and keep the folder under its size cap."""
        was_open = self._db is not None
        self._close_quietly()
        release(self._lock)
        self._lock = None
        if was_open:
            enforce_cap(self.path.parent)

    def __del__(self) -> None:  # a cache dropped without close() must not keep the folder's lock for the process's life
        release(getattr(self, "_lock", None))
