"""On-disk cache of preprocessed tensors: ``confirm`` and ``doctor`` decode an eval folder once per preprocessing,
not once per run, and a second run starts at once; ``build`` keeps its chosen files' tensors the same way, so a
rebuild of an unchanged folder decodes nothing.

One entry per *load*: the stacked float32 array of the records that loaded, as a ``.npy`` file, and a small JSON
index (which content fingerprint each row holds, the array's size and checksum), in ``tensors-v2-<preprocessing>/``
next to the embedding caches. An entry's name is a hash of the preprocessing fingerprint (behaviour, not source: see
:mod:`repcurate.data.preprocess`), the decode limit and the ordered content fingerprints of the records, so the same
eval folder (and ``--max-eval`` sample) under the same preprocessing finds it; any other list is another entry.
A warm load memory-maps the array (copy-on-write: the caller may write to it, the file never changes) after checking
its bytes against the checksum, so it costs no decoding.

Both files are written to hidden temporary siblings and renamed into place (array first, index last), so
concurrent runs never see half an entry: two writers of one entry write the same bytes and the last rename wins.
Files that failed to decode are not cached (they are decoded again, for their skip reason). Like the embedding
cache it only ever saves work: an entry that does not read back (not a regular file, truncated, values changed in
place, an index that does not match its array) is removed with one warning, decoded again and rewritten, and a cache
directory that cannot be written is reported once. The folder is kept under its size cap by
:mod:`repcurate.embed.cache_folder`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.preprocess import Preprocessor
from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.embed.cache_files import DamagedCacheFile, checksum, open_regular, verify
from repcurate.embed.cache_folder import enforce_cap, tensor_folder_name
from repcurate.errors import InputError
from repcurate.io.atomic import clear_stale_staging, staging_prefix

log = logging.getLogger("repcurate")

#: Bumped when the entry layout changes; the folder is named after it, so the cache folder's upkeep
#: (:mod:`repcurate.embed.cache_folder`) removes the folders of earlier versions.
FORMAT = 2
#: The largest index file read (a row is a 64-character fingerprint): a bigger one is damage, not an entry.
MAX_INDEX_BYTES = 256 * 2**20
#: Messages already logged in this process (a cache that cannot be written warns once).
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


class TensorStore:
    """The cached stacked tensors of record lists, for one preprocessing fingerprint."""

    def __init__(self, directory: Path, preprocessing_fingerprint: str) -> None:
        self.preprocessing = preprocessing_fingerprint
        self.directory = Path(directory) / tensor_folder_name(preprocessing_fingerprint)

    def key(self, fingerprints: list[str], max_pixels: int) -> str:
        """The entry name of a load of these contents (in this order) with this decode limit."""
        digest = hashlib.sha256(f"repcurate-tensors {FORMAT} {self.preprocessing} {max_pixels}\n".encode())
        digest.update("\n".join(fingerprints).encode())
        return digest.hexdigest()[:32]

    def paths(self, key: str) -> tuple[Path, Path]:
        """The entry's array and index files."""
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"

    def get(self, key: str) -> tuple[np.ndarray, list[str]] | None:
        """The entry's array (memory-mapped, copy-on-write) and its rows' fingerprints; None when absent or damaged.

        The index and the array must be regular files (a FIFO never blocks), the array's size, header and shape must
        be what the index records, and its bytes must match the recorded checksum; otherwise the entry is removed with
        a warning, and the caller decodes again. A good entry is marked as used now (least-recently-used eviction)."""
        array_path, index_path = self.paths(key)
        try:
            index = _read_index(index_path)
            rows = index["rows"]
            if (index.get("format") != FORMAT or not isinstance(rows, list)
                    or not all(isinstance(row, str) for row in rows)):
                raise DamagedCacheFile("index not in this version's layout")
            array = _map_array(array_path, index)
            verify(array, index.get("checksum"))
        except FileNotFoundError:
            return None
        except (DamagedCacheFile, ValueError, KeyError, TypeError, RecursionError) as exc:
            self.discard(key, exc)
            return None
        except OSError as exc:  # not damage (no permission, an I/O error): leave it, decode, try to rewrite it
            log.info("tensor cache entry %s unreadable (%s); decoding again", array_path, exc.strerror or exc)
            return None
        try:
            os.utime(index_path)
        except OSError:
            pass
        return array, rows

    def discard(self, key: str, why: BaseException) -> None:
        """Remove a damaged entry (index first, so nobody maps an array without it), with one warning."""
        array_path, index_path = self.paths(key)
        reason = str(why) if isinstance(why, DamagedCacheFile) else f"{type(why).__name__}: {why}"
        _warn_once(f"tensor cache entry {array_path} is damaged ({reason}); removed it, decoding again")
        for path in (index_path, array_path):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def put(self, key: str, array: np.ndarray, rows: list[str]) -> None:
        """Write an entry (array, then index, each renamed into place); a failure is reported once, never raised."""
        array_path, index_path = self.paths(key)
        array = np.ascontiguousarray(array, dtype=np.float32)
        index = {"format": FORMAT, "preprocessing": self.preprocessing, "rows": rows,
                 "sample_shape": list(array.shape[1:]), "checksum": checksum(array)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(array_path, lambda out: np.lib.format.write_array(out, array, allow_pickle=False))
            index["file_bytes"] = array_path.stat().st_size
            _write_atomic(index_path, lambda out: out.write(json.dumps(index).encode("utf-8")))
        except OSError as exc:
            _warn_once(f"eval tensor cache {self.directory} unusable ({exc.strerror or exc}); running without it")
            return
        enforce_cap(self.directory.parent)


def _read_index(path: Path) -> dict[str, Any]:
    """An entry's JSON index, read only from a regular file of a bounded size."""
    with open_regular(path, max_bytes=MAX_INDEX_BYTES) as handle:
        index = json.loads(handle.read().decode("utf-8"))
    if not isinstance(index, dict):
        raise DamagedCacheFile("index is not a JSON object")
    return index


def _map_array(path: Path, index: dict[str, Any]) -> np.ndarray:
    """Memory-map (copy-on-write) the entry's ``.npy`` through a descriptor opened without blocking, after checking
    that it is a regular file of exactly the recorded size whose header matches the index."""
    size = index.get("file_bytes")
    if not isinstance(size, int) or size < 0:
        raise DamagedCacheFile("no file size recorded")
    with open_regular(path, max_bytes=size) as handle:
        if os.fstat(handle.fileno()).st_size != size:
            raise DamagedCacheFile(f"{os.fstat(handle.fileno()).st_size} bytes, not the {size} recorded")
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise DamagedCacheFile(f"unexpected .npy version {version}")
        rows = len(index["rows"])
        if (dtype != np.float32 or fortran or len(shape) < 1 or shape[0] != rows
                or list(shape[1:]) != index.get("sample_shape") or rows == 0):
            raise DamagedCacheFile("array header does not match the index")
        offset = handle.tell()
        if offset + int(np.prod(shape)) * 4 != size:
            raise DamagedCacheFile("array size does not match its header")
        return np.memmap(handle, dtype=np.float32, mode="c", shape=tuple(shape), offset=offset)


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a hidden temporary sibling (flushed to disk) and a rename; siblings left by runs
    that died are removed first."""
    clear_stale_staging(path)
    handle, staging = tempfile.mkstemp(prefix=staging_prefix(path.name, "tmp"), dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _decode(records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *, workers: int,
            max_pixels: int) -> tuple[dict[str, np.ndarray], dict[str, SkippedFile]]:
    """Decode each distinct content of ``records`` once: the samples and the failures, by fingerprint."""
    from repcurate.embed.samples import iter_loaded

    todo = list({r.fingerprint: r for r in records}.values())
    samples: dict[str, np.ndarray] = {}
    failures: dict[str, SkippedFile] = {}
    for item in iter_loaded(todo, root, preprocessor, workers=workers, lookahead=4 * max(1, workers),
                            max_pixels=max_pixels):
        if item.failure is not None:
            failures[item.record.fingerprint] = item.failure
        else:
            assert item.sample is not None
            samples[item.record.fingerprint] = item.sample
    return samples, failures


def _stack(usable: list[tuple[ImageRecord, np.ndarray]]) -> np.ndarray:
    """The samples as one float32 array; a shape change between files is an input error."""
    first_record, first = usable[0]
    for record, sample in usable[1:]:
        if sample.shape != first.shape:
            raise InputError(f"preprocessing gave shape {sample.shape} for {record.path} but {first.shape} for "
                             f"{first_record.path}; fix: resize/crop to a fixed size in --preprocess")
    return np.stack([sample for _, sample in usable]).astype(np.float32, copy=False)


def load_tensors_cached_skipping(records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *,
                                 cache_dir: Path | None, workers: int = 2,
                                 max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray | None, list[SkippedFile]]:
    """:func:`repcurate.embed.pipeline.load_tensors_skipping` with the result cached in ``cache_dir`` (None: no
    cache): a second load of the same records decodes only the files that failed before. Returns the stacked float32
    samples of the records that loaded (None when none did), in record order, and the records that failed."""
    store = TensorStore(cache_dir, preprocessor.fingerprint) if cache_dir is not None else None
    key = store.key([r.fingerprint for r in records], max_pixels) if store is not None else ""
    entry = store.get(key) if store is not None else None
    cached_rows = set(entry[1]) if entry is not None else set()
    samples, failures = _decode([r for r in records if r.fingerprint not in cached_rows], root, preprocessor,
                                workers=workers, max_pixels=max_pixels)
    failed = [SkippedFile(r.path, failures[r.fingerprint].reason, failures[r.fingerprint].detail)
              for r in records if r.fingerprint in failures]
    if entry is not None and not samples:
        log.info("eval tensors: %d from the cache, %d failed again", entry[0].shape[0], len(failed))
        return (entry[0] if entry[0].shape[0] else None), failed
    known: dict[str, np.ndarray] = {}
    if entry is not None:  # a file that failed before loads now: rebuild the entry
        known = {fingerprint: entry[0][row] for row, fingerprint in enumerate(entry[1])}
    usable = [(r, known[r.fingerprint] if r.fingerprint in known else samples[r.fingerprint]) for r in records
              if r.fingerprint not in failures]
    log.info("eval tensors: %d decoded, %d from the cache", len(samples) + len(failures), len(known))
    if not usable:
        return None, failed
    stacked = _stack(usable)
    if store is not None:
        store.put(key, stacked, [r.fingerprint for r, _ in usable])
    return stacked, failed


def load_tensors_cached(records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *,
                        cache_dir: Path | None, workers: int = 2, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """:func:`load_tensors_cached_skipping` for records all known to decode: a failure is an :class:`InputError`."""
    tensors, failures = load_tensors_cached_skipping(records, root, preprocessor, cache_dir=cache_dir,
                                                     workers=workers, max_pixels=max_pixels)
    if failures:
        raise InputError(f"{failures[0].path}: {failures[0].reason}: {failures[0].detail}")
    return tensors if tensors is not None else np.zeros((0,), np.float32)
