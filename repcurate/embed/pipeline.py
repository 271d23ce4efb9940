"""Decode → preprocess in worker threads while the model runs batches; cache every vector."""
from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS, DecodeError
from repcurate.data.preprocess import PreprocessError, Preprocessor
from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.data.set_files import decode_verified
from repcurate.embed.base import Embedder
from repcurate.embed.cache import EmbeddingCache
from repcurate.embed.engine import EmbeddingEngine, EngineJob
from repcurate.errors import InputError

log = logging.getLogger("repcurate")

#: Batches decoded ahead of the model, so decoding overlaps inference.
PREFETCH_BATCHES = 3


@dataclass
class LoadedSample:
    """One record after decoding and preprocessing, or the reason it failed."""

    record: ImageRecord
    sample: np.ndarray | None = None
    failure: SkippedFile | None = None


@dataclass
class EmbeddingRun:
    """Vectors for the usable records (row i ↔ ``records[i]``), skipped files and cache statistics."""

    vectors: np.ndarray
    records: list[ImageRecord]
    skipped: list[SkippedFile] = field(default_factory=list)
    computed: int = 0
    cache_hits: int = 0


def load_sample(record: ImageRecord, root: Path, preprocessor: Preprocessor, max_pixels: int) -> LoadedSample:
    """Decode one file to RGB and run the preprocessing; failures are captured, not raised. The file is used
    only when its content still matches ``record.fingerprint`` (the cache is keyed by it) and its path stays
    below ``root`` (see :mod:`repcurate.data.set_files`)."""
    try:
        decoded = decode_verified(root, record.path, record.fingerprint, max_pixels=max_pixels,
                                  size_bytes=record.size_bytes)
    except DecodeError as exc:
        return LoadedSample(record, failure=SkippedFile(record.path, exc.reason, exc.detail))
    try:
        sample = preprocessor(decoded.image)
    except PreprocessError as exc:
        return LoadedSample(record, failure=SkippedFile(record.path, "preprocess_error", f"{preprocessor.spec} {exc}"))
    if sample.dtype.kind == "f" and not np.isfinite(sample).all():
        bad = int(sample.size - np.count_nonzero(np.isfinite(sample)))
        return LoadedSample(record, failure=SkippedFile(
            record.path, "non_finite", f"{preprocessor.spec} returned {bad} NaN or infinite values of {sample.size}"))
    return LoadedSample(record, sample=sample)


def iter_loaded(
    records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *,
    workers: int, lookahead: int, max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[LoadedSample]:
    """Yield loaded samples in record order, decoding up to ``lookahead`` files ahead in threads."""
    pending: deque[Future[LoadedSample]] = deque()
    source = iter(records)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        def submit_next() -> None:
            record = next(source, None)
            if record is not None:
                pending.append(pool.submit(load_sample, record, root, preprocessor, max_pixels))

        for _ in range(max(1, lookahead)):
            submit_next()
        while pending:
            result = pending.popleft().result()
            submit_next()
            yield result


def stack_samples(samples: list[LoadedSample]) -> np.ndarray:
    """Stack samples into one array; a shape or dtype change between files is an input error."""
    first = samples[0]
    assert first.sample is not None
    for item in samples[1:]:
        assert item.sample is not None
        if item.sample.shape != first.sample.shape:
            raise InputError(
                f"preprocessing gave shape {item.sample.shape} for {item.record.path} but "
                f"{first.sample.shape} for {first.record.path}; fix: resize/crop to a fixed size in --preprocess"
            )
    return np.stack([s.sample for s in samples]).astype(np.float32, copy=False)  # type: ignore[misc]


def pad_batch(stacked: np.ndarray, batch_size: int) -> np.ndarray:
    """``stacked`` padded to ``batch_size`` rows with copies of its last row.

    Frameworks may pick other kernels for other batch shapes (a batch of 1 especially), which changes
    the last bits of the features: with every batch full, a file's vector does not depend on how many
    other files happened to need embedding in the same run (a clean build vs a rerun that finds all
    but a few files in the cache). The padding rows' outputs are dropped.
    """
    missing = batch_size - stacked.shape[0]
    if missing <= 0:
        return stacked
    return np.concatenate([stacked, np.repeat(stacked[-1:], missing, axis=0)])


def _progress(total: int, enabled: bool | None, desc: str):
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit="img", disable=not show, file=sys.stderr, leave=False)


def embed_samples(embedder: Embedder, samples: list[LoadedSample], batch_size: int) -> np.ndarray:
    """The embedder's vectors of loaded samples (row i ↔ ``samples[i]``), in model batches of exactly
    ``batch_size`` rows (:func:`pad_batch`), so a file's vector does not depend on which engine or run embedded it."""
    rows = []
    for start in range(0, len(samples), batch_size):
        part = samples[start:start + batch_size]
        rows.append(np.asarray(embedder.embed_batch(pad_batch(stack_samples(part), batch_size)))[:len(part)])
    return np.concatenate(rows).astype(np.float32, copy=False)


def embed_records(
    records: list[ImageRecord], root: Path, embedder: Embedder, *,
    cache_dir: Path | None, batch_size: int = 32, workers: int = 2,
    progress: bool | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, desc: str = "embedding",
    engine: EmbeddingEngine | None = None,
) -> EmbeddingRun:
    """Embed every record (files with identical content once), reusing and filling the cache. ``engine`` computes
    what the cache lacks (default: the local engine); this driver owns the cache and everything after embedding."""
    from repcurate.embed.local_engine import LocalEngine

    engine = engine if engine is not None else LocalEngine()
    cache = EmbeddingCache(cache_dir, embedder.fingerprint, embedder.preprocessor.fingerprint) if cache_dir else None
    try:
        known = cache.get_many([r.fingerprint for r in records]) if cache else {}
        todo: list[ImageRecord] = []
        seen: set[str] = set()
        for record in records:
            if record.fingerprint not in known and record.fingerprint not in seen:
                seen.add(record.fingerprint)
                todo.append(record)
        failed: dict[str, SkippedFile] = {}
        computed: dict[str, np.ndarray] = {}
        if todo:
            log.info("embedding %d files with %s (%d from cache, %s engine)", len(todo), embedder.model_spec,
                     len(known), engine.name)
            job = EngineJob(root=root, embedder=embedder, batch_size=batch_size, workers=workers, max_pixels=max_pixels)
            with _progress(len(todo), progress, desc) as bar:
                for chunk in engine.run(todo, job):
                    for record, failure in chunk.failures:
                        failed[record.fingerprint] = failure
                    finite = np.isfinite(chunk.vectors).all(axis=1) if len(chunk.records) else np.zeros(0, bool)
                    for i in np.flatnonzero(~finite):
                        failed[chunk.records[i].fingerprint] = SkippedFile(
                            chunk.records[i].path, "non_finite",
                            f"the features {embedder.model_spec} computed are NaN or infinite")
                    items = [(r.fingerprint, chunk.vectors[i]) for i, r in enumerate(chunk.records) if finite[i]]
                    computed.update(items)
                    if cache and items:
                        cache.put_many(items)
                    bar.update(len(chunk))
    finally:
        if cache:
            cache.close()

    usable: list[ImageRecord] = []
    rows: list[np.ndarray] = []
    skipped: list[SkippedFile] = []
    for record in records:
        vector = known.get(record.fingerprint)
        if vector is None:
            vector = computed.get(record.fingerprint)
        if vector is None:
            reason = failed[record.fingerprint]
            skipped.append(SkippedFile(record.path, reason.reason, reason.detail))
            continue
        usable.append(record)
        rows.append(vector)
    dim = rows[0].shape[0] if rows else 0
    matrix = np.vstack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, dim), np.float32)
    return EmbeddingRun(vectors=matrix, records=usable, skipped=skipped,
                        computed=len(computed), cache_hits=sum(1 for r in records if r.fingerprint in known))


def load_tensors_skipping(
    records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *, workers: int = 2,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray | None, list[SkippedFile]]:
    """Decode and preprocess ``records`` into one stacked float32 array (None when none loads), and the
    records that failed (``non_finite``, ``preprocess_error``, a decode reason), in record order."""
    loaded = list(iter_loaded(records, root, preprocessor, workers=workers, lookahead=4 * max(1, workers),
                              max_pixels=max_pixels))
    failures = [item.failure for item in loaded if item.failure is not None]
    usable = [item for item in loaded if item.failure is None]
    return (stack_samples(usable) if usable else None), failures


def load_tensors(
    records: list[ImageRecord], root: Path, preprocessor: Preprocessor, *, workers: int = 2,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode and preprocess ``records`` (all known to decode) into one stacked float32 array."""
    tensors, failures = load_tensors_skipping(records, root, preprocessor, workers=workers, max_pixels=max_pixels)
    if failures:
        raise InputError(f"{failures[0].path}: {failures[0].reason}: {failures[0].detail}")
    assert tensors is not None or not records
    return tensors if tensors is not None else np.zeros((0,), np.float32)
