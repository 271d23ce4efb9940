"""Decode → preprocess one record at a time in worker threads, stack into full model batches, embed.

The sample side every embedding engine shares (:mod:`repcurate.embed.local_engine`,
:mod:`repcurate.embed.ray_engine`) and the driver (:mod:`repcurate.embed.pipeline`) uses.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS, DecodeError
from repcurate.data.preprocess import PreprocessError, Preprocessor
from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.data.set_files import decode_verified
from repcurate.embed.base import Embedder
from repcurate.errors import InputError

#: Batches decoded ahead of the model, so decoding overlaps inference.
PREFETCH_BATCHES = 3


@dataclass
class LoadedSample:
    """One record after decoding and preprocessing, or the reason it failed."""

    record: ImageRecord
    sample: np.ndarray | None = None
    failure: SkippedFile | None = None


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


def embed_samples(embedder: Embedder, samples: list[LoadedSample], batch_size: int) -> np.ndarray:
    """The embedder's vectors of loaded samples (row i ↔ ``samples[i]``), in model batches of exactly
    ``batch_size`` rows (:func:`pad_batch`), so a file's vector does not depend on which engine or run embedded it."""
    rows = []
    for start in range(0, len(samples), batch_size):
        part = samples[start:start + batch_size]
        rows.append(np.asarray(embedder.embed_batch(pad_batch(stack_samples(part), batch_size)))[:len(part)])
    return np.concatenate(rows).astype(np.float32, copy=False)
