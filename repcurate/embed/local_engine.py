"""The local engine: decode → preprocess in worker threads while the model runs batches in this process."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.embed.engine import EmbeddedChunk, EngineJob, EngineSettings
from repcurate.embed.pipeline import PREFETCH_BATCHES, LoadedSample, embed_samples, iter_loaded


class LocalEngine:
    """Threads decode ``PREFETCH_BATCHES`` batches ahead of the model; one chunk per model batch."""

    name = "local"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    def require(self) -> None:
        """Nothing beyond repcurate's own dependencies."""

    def run(self, todo: list[ImageRecord], job: EngineJob) -> Iterator[EmbeddedChunk]:
        batch: list[LoadedSample] = []
        failures: list[tuple[ImageRecord, SkippedFile]] = []
        for item in iter_loaded(todo, job.root, job.embedder.preprocessor, workers=job.workers,
                                lookahead=job.batch_size * PREFETCH_BATCHES, max_pixels=job.max_pixels):
            if item.failure is not None:
                failures.append((item.record, item.failure))
                continue
            batch.append(item)
            if len(batch) == job.batch_size:
                yield EmbeddedChunk([s.record for s in batch], embed_samples(job.embedder, batch, job.batch_size), failures)
                batch, failures = [], []
        if batch or failures:
            vectors = embed_samples(job.embedder, batch, job.batch_size) if batch else np.zeros((0, 0), np.float32)
            yield EmbeddedChunk([s.record for s in batch], vectors, failures)
