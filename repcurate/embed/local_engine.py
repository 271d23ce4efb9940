"""The local engine: decode → preprocess in worker threads while the model runs batches in this process."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.embed.base import Embedder
from repcurate.embed.engine import EmbeddedChunk, EngineJob, EngineSettings
from repcurate.embed.samples import PREFETCH_BATCHES, LoadedSample, embed_samples, iter_loaded

#: Batches decoded ahead while the model is still being loaded (importing torch and building the bundled model
#: take seconds of one core; the other decodes meanwhile). About 150 MB of 224-px float32 samples at batch 32.
LOADING_AHEAD_BATCHES = 8


def _start_loading(embedder: Embedder) -> tuple[ThreadPoolExecutor, Future[None]] | None:
    """Load a lazy embedder's model in a background thread (its ``prepare``), or None when there is none."""
    prepare = getattr(embedder, "prepare", None)
    if prepare is None:
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repcurate-model")
    return pool, pool.submit(prepare)


class LocalEngine:
    """Threads decode ``PREFETCH_BATCHES`` batches ahead of the model (``LOADING_AHEAD_BATCHES`` while a lazy model
    loads in the background); one chunk per model batch, in record order."""

    name = "local"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    def require(self) -> None:
        """Nothing beyond repcurate's own dependencies."""

    def run(self, todo: list[ImageRecord], job: EngineJob) -> Iterator[EmbeddedChunk]:
        loading = _start_loading(job.embedder)
        ready: deque[tuple[list[LoadedSample], list[tuple[ImageRecord, SkippedFile]]]] = deque()

        def model_ready() -> bool:
            return loading is None or loading[1].done() or len(ready) >= LOADING_AHEAD_BATCHES

        def embedded(batch: list[LoadedSample], failures: list[tuple[ImageRecord, SkippedFile]]) -> EmbeddedChunk:
            if loading is not None:
                loading[1].result()  # the model's load error, if any, surfaces here
            vectors = embed_samples(job.embedder, batch, job.batch_size) if batch else np.zeros((0, 0), np.float32)
            return EmbeddedChunk([s.record for s in batch], vectors, failures)

        try:
            batch: list[LoadedSample] = []
            failures: list[tuple[ImageRecord, SkippedFile]] = []
            for item in iter_loaded(todo, job.root, job.embedder.preprocessor, workers=job.workers,
                                    lookahead=job.batch_size * PREFETCH_BATCHES, max_pixels=job.max_pixels):
                if item.failure is not None:
                    failures.append((item.record, item.failure))
                    continue
                batch.append(item)
                if len(batch) == job.batch_size:
                    ready.append((batch, failures))
                    batch, failures = [], []
                while ready and model_ready():
                    yield embedded(*ready.popleft())
            while ready:
                yield embedded(*ready.popleft())
            if batch or failures:
                yield embedded(batch, failures)
        finally:
            if loading is not None:
                loading[0].shutdown(wait=False)
