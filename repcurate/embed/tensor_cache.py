"""On-disk cache of preprocessed eval tensors: ``confirm`` and ``doctor`` decode an eval folder once per
preprocessing, not once per run.

One SQLite file per preprocessing fingerprint (behaviour, not source: see :mod:`repcurate.data.preprocess`) next
to the embedding caches, keyed by file content; each row keeps a sample's shape, dtype and bytes. It is handled
like the embedding cache (:class:`~repcurate.embed.cache.EmbeddingCache`): a corrupt database is moved aside and a
fresh one started, an unusable one is reported once and the run goes on decoding. A row whose bytes do not match
its shape, or that holds NaN or infinite values, is not used (the file is decoded again).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.preprocess import Preprocessor
from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.embed.cache import EmbeddingCache
from repcurate.errors import InputError

log = logging.getLogger("repcurate")

TENSOR_SCHEMA = "CREATE TABLE IF NOT EXISTS tensors (content TEXT PRIMARY KEY, shape TEXT, dtype TEXT, data BLOB)"
#: Sample dtypes a row may hold (what preprocessing returns: floats and integers).
_DTYPES = frozenset({"float32", "float64", "float16", "uint8", "int8", "int16", "int32", "int64", "uint16", "bool"})


class TensorCache(EmbeddingCache):
    """Preprocessed samples keyed by content fingerprint, for one preprocessing fingerprint."""

    schema = TENSOR_SCHEMA
    label = "eval tensor cache"
    insert = "INSERT OR REPLACE INTO tensors VALUES (?, ?, ?, ?)"

    def __init__(self, directory: Path, preprocessing_fingerprint: str) -> None:
        self._start(Path(directory) / f"tensors-{preprocessing_fingerprint[:32]}.sqlite")

    def _select(self, unique: list[str]) -> dict[str, np.ndarray]:
        assert self._db is not None
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(unique), 200):
            chunk = unique[start:start + 200]
            marks = ",".join("?" * len(chunk))
            for key, shape_text, dtype, blob in self._db.execute(
                f"SELECT content, shape, dtype, data FROM tensors WHERE content IN ({marks})", chunk
            ):
                sample = _decode_row(shape_text, dtype, blob)
                if sample is not None:
                    found[key] = sample
        return found

    def _row(self, key: str, value: np.ndarray) -> tuple[object, ...]:
        array = np.ascontiguousarray(value)
        return key, ",".join(map(str, array.shape)), array.dtype.name, array.tobytes()


def _decode_row(shape_text: object, dtype: object, blob: object) -> np.ndarray | None:
    """A cached sample, or None when the row is damaged (wrong size, unknown dtype, non-finite values)."""
    if not isinstance(shape_text, str) or not isinstance(dtype, str) or dtype not in _DTYPES or not isinstance(blob, bytes):
        return None
    try:
        shape = tuple(int(n) for n in shape_text.split(",")) if shape_text else ()
    except ValueError:
        return None
    if any(n < 0 for n in shape) or int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize != len(blob):
        return None
    sample = np.frombuffer(blob, dtype=dtype).reshape(shape)
    if sample.dtype.kind == "f" and not np.isfinite(sample).all():
        return None
    return sample


def load_tensors_cached_skipping(records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *,
                                 cache_dir: Path | None, workers: int = 2,
                                 max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray | None, list[SkippedFile]]:
    """:func:`repcurate.embed.pipeline.load_tensors_skipping` with the decoded samples cached in ``cache_dir``
    (None: no cache): files whose content the cache holds are not decoded again. Returns the stacked float32
    samples of the records that loaded (None when none did), in record order, and the records that failed."""
    from repcurate.embed.pipeline import iter_loaded

    cache = TensorCache(cache_dir, preprocessor.fingerprint) if cache_dir is not None else None
    failures: dict[str, SkippedFile] = {}
    try:
        known = cache.get_many([r.fingerprint for r in records]) if cache else {}
        todo = list({r.fingerprint: r for r in records if r.fingerprint not in known}.values())
        decoded: dict[str, np.ndarray] = {}
        if todo:
            for item in iter_loaded(todo, root, preprocessor, workers=workers, lookahead=4 * max(1, workers),
                                    max_pixels=max_pixels):
                if item.failure is not None:
                    failures[item.record.fingerprint] = item.failure
                    continue
                assert item.sample is not None
                decoded[item.record.fingerprint] = item.sample
            if cache and decoded:
                cache.put_many(list(decoded.items()))
        log.info("eval tensors: %d decoded, %d from the cache", len(todo), len(records) - len(todo))
    finally:
        if cache:
            cache.close()
    usable = [(r, known.get(r.fingerprint, decoded.get(r.fingerprint))) for r in records
              if r.fingerprint not in failures]
    failed = [SkippedFile(r.path, failures[r.fingerprint].reason, failures[r.fingerprint].detail)
              for r in records if r.fingerprint in failures]
    if not usable:
        return None, failed
    first_record, first = usable[0]
    for record, sample in usable[1:]:
        assert sample is not None and first is not None
        if sample.shape != first.shape:
            raise InputError(f"preprocessing gave shape {sample.shape} for {record.path} but {first.shape} for "
                             f"{first_record.path}; fix: resize/crop to a fixed size in --preprocess")
    return np.stack([sample for _, sample in usable]).astype(np.float32, copy=False), failed  # type: ignore[misc]


def load_tensors_cached(records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *,
                        cache_dir: Path | None, workers: int = 2, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """:func:`load_tensors_cached_skipping` for records all known to decode: a failure is an :class:`InputError`."""
    tensors, failures = load_tensors_cached_skipping(records, root, preprocessor, cache_dir=cache_dir,
                                                     workers=workers, max_pixels=max_pixels)
    if failures:
        raise InputError(f"{failures[0].path}: {failures[0].reason}: {failures[0].detail}")
    return tensors if tensors is not None else np.zeros((0,), np.float32)
