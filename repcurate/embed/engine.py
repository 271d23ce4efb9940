"""Embedding engines: who decodes, preprocesses and embeds the files the cache does not hold.

The driver (:func:`repcurate.embed.pipeline.embed_records`) owns the cache, the de-duplication of identical
contents, the finiteness check and everything after embedding; an engine only turns a list of records into
vectors and skip reasons, chunk by chunk (so the driver can write the cache as results arrive). Engines are
registered by name in :mod:`repcurate.embed.engines` (``--engine local|ray``); every engine gives the same
embeddings for the same files (checked by ``tests/unit/embed/test_engine_contract.py``).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.embed.base import Embedder

#: Seconds a cluster engine waits for its cluster to answer (``--ray-timeout``), by default and at most.
DEFAULT_RAY_TIMEOUT = 30.0
MAX_RAY_TIMEOUT = 3600.0


@dataclass(frozen=True)
class EngineSettings:
    """What ``build`` passes every engine; an engine reads the fields it needs. ``address``: a cluster to join
    (Ray: ``--ray-address`` / ``RAY_ADDRESS``; None starts or reuses a local one); ``actors``: model replicas
    (Ray: one model per actor; None: one per GPU with ``--device cuda``, else one); ``timeout``: see below."""

    address: str | None = None
    actors: int | None = None
    #: Seconds to wait for the cluster at ``address`` to answer before giving up (Ray: ``--ray-timeout``).
    timeout: float = DEFAULT_RAY_TIMEOUT


@dataclass(frozen=True)
class EngineJob:
    """One embedding job: the files' root, the embedder (built on the driver), batching and decoding limits."""

    root: Path
    embedder: Embedder
    batch_size: int = 32
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class EmbeddedChunk:
    """Results for some records: ``vectors`` row i belongs to ``records[i]``; ``failures`` are the records that
    could not be decoded or preprocessed, with the reason (the local engine's reason codes)."""

    records: list[ImageRecord]
    vectors: np.ndarray
    failures: list[tuple[ImageRecord, SkippedFile]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records) + len(self.failures)


class EmbeddingEngine(Protocol):
    """Embeds records (each content once; the driver has removed cache hits and duplicates)."""

    #: The ``--engine`` name.
    name: str

    def require(self) -> None:
        """Raise :class:`~repcurate.errors.MissingDependencyError` up front when the engine's packages are missing."""
        ...

    def run(self, todo: list[ImageRecord], job: EngineJob) -> Iterator[EmbeddedChunk]:
        """Chunks covering every record of ``todo`` exactly once (as a vector or a failure), in any order."""
        ...
