"""The steps of ``build``, each a function of the checked request: read and pool the source, embed it (and the
target domain), select and preprocess the set, describe it in the manifest."""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.commands.building.request import CheckedBuild
from repcurate.data.annotated import read_annotated, scan_annotated_images
from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.scan import ScanResult, SkippedFile, fingerprint_files, list_source
from repcurate.data.sources import scan
from repcurate.embed.pipeline import EmbeddingRun, embed_records
from repcurate.embed.tensor_cache import load_tensors_cached_skipping
from repcurate.errors import InputError
from repcurate.select.object_pool import choose_object_pool
from repcurate.select.object_quotas import BACKGROUND_NAME
from repcurate.select.pool import choose_pool, pooled_quota_rule
from repcurate.select.selection import Selection, select_representatives
from repcurate.tasks.balancing import Balance, balance_for

log = logging.getLogger("repcurate")


class Timer:
    """Wall time per named step (``timings`` of the result; never part of the manifest)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def add(self, name: str, started: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


@dataclass
class PooledSource:
    """The scanned pool of the training source: its records, how many candidates there were, the manifest's pool
    section, the per-class totals of a partial object pool and the quota rule of a partial folder pool."""

    source: ScanResult
    candidates: int
    pool_info: dict[str, Any]
    class_totals: list[int] | None
    pooled_rule: Any


@dataclass
class Embedded:
    """The training pool's embeddings (and, with ``--match-dir``, the target domain's) and what was skipped."""

    run: EmbeddingRun
    skipped: list[SkippedFile]
    target_vectors: np.ndarray | None
    target_info: dict[str, Any] | None


@dataclass
class Selected:
    """The chosen set: the selection, its labels and records, its preprocessed tensors, and the balancing that
    set the quotas (``embedded`` without contents the set's preprocessing failed on)."""

    selection: Selection
    balancing: Balance
    labels: list[Any]
    chosen: list[Any]
    tensors: np.ndarray
    embedded: Embedded


def pool_annotated(checked: CheckedBuild) -> PooledSource:
    """An annotated dataset: every image's labels are read; only the per-object-class pool is fingerprinted."""
    request, config = checked.request, checked.config
    path, split = request.source.path, request.source.split
    dataset = read_annotated(path, split, request.source.images_path)
    images = sorted(dataset.images, key=lambda image: image.path.as_posix())
    object_pool = choose_object_pool(images, dataset.names, checked.pool_rule, size=config.size,
                                     balance=config.balance, seed=config.seed,
                                     background_share=request.source.background_share)
    pooled_images = [images[i] for i in object_pool.rows]
    source = scan_annotated_images(path, dataset, pooled_images, workers=max(2, checked.runtime.workers))
    pooled_paths = [Path(os.path.relpath(image.path, source.root)).as_posix() for image in pooled_images]
    class_totals = None if object_pool.complete else [int(n) for n in object_pool.class_instances]
    return PooledSource(source, len(images) + len(dataset.skipped), object_pool.manifest_section(pooled_paths, config.seed),
                        class_totals, None)


def pool_listed(checked: CheckedBuild) -> PooledSource:
    """A folder or list: the files are listed, a stratified pool drawn, and only the pool fingerprinted."""
    request, config, runtime = checked.request, checked.config, checked.runtime
    listing = list_source(request.source.path, layout=request.source.layout, progress=runtime.progress)
    candidates = len(listing.files) + len(listing.skipped)
    drawn = choose_pool(checked.labelling.labels(listing.files), checked.pool_rule, size=config.size,
                        balance=config.balance, seed=config.seed, quota_rule=checked.labelling.quotas)
    pooled_files = [listing.files[i] for i in drawn.rows]
    source = fingerprint_files(listing, pooled_files, workers=max(2, runtime.workers), progress=runtime.progress)
    pooled_rule = None if drawn.complete else pooled_quota_rule(checked.labelling.quotas, drawn.class_files)
    return PooledSource(source, candidates, drawn.manifest_section([f.path for f in pooled_files], config.seed),
                        None, pooled_rule)


def _embed(checked: CheckedBuild, embedder: Any, source: ScanResult, desc: str) -> EmbeddingRun:
    runtime = checked.runtime
    return embed_records(source.records, source.root, embedder, cache_dir=runtime.cache, batch_size=runtime.batch_size,
                         workers=runtime.workers, progress=runtime.progress, max_pixels=DEFAULT_MAX_PIXELS, desc=desc,
                         engine=checked.engine)


def no_usable_error(source: ScanResult, skipped: list[SkippedFile], what: str) -> InputError:
    reasons = Counter(s.reason for s in skipped)
    detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "no image files found"
    return InputError(f"{source.root}: no usable image in the {what} ({detail}); "
                      "fix: point to a folder of JPEG/PNG/BMP/GIF/TIFF/WebP images")


def embed(checked: CheckedBuild, embedder: Any, pooled: PooledSource) -> Embedded:
    """Embed the pool (cache first), and the ``--match-dir`` target folder when given."""
    source = pooled.source
    run = _embed(checked, embedder, source, "embedding train")
    skipped = sorted(source.skipped + run.skipped, key=lambda s: s.path)
    if not run.records:
        raise no_usable_error(source, skipped, "training data")
    match_dir = checked.request.match_dir
    if match_dir is None:
        return Embedded(run, skipped, None, None)
    target = scan(Path(match_dir), layout="flat", workers=max(2, checked.runtime.workers))
    target_run = _embed(checked, embedder, target, "embedding target")
    if len(target_run.records) < 2:
        raise no_usable_error(target, target.skipped + target_run.skipped, "--match-dir folder")
    return Embedded(run, skipped, target_run.vectors,
                    {"dir": target.root.as_posix(), "images": len(target_run.records),
                     "skipped": len(target.skipped) + len(target_run.skipped)})


def _without_contents(run: EmbeddingRun, failures: list[SkippedFile]) -> tuple[EmbeddingRun, list[SkippedFile]]:
    """``run`` without every record whose content failed (identical bytes fail alike), and their skip entries."""
    failed_at = {f.path: f for f in failures}
    reason_of = {r.fingerprint: failed_at[r.path] for r in run.records if r.path in failed_at}
    keep = [i for i, r in enumerate(run.records) if r.fingerprint not in reason_of]
    dropped = [SkippedFile(r.path, reason_of[r.fingerprint].reason, reason_of[r.fingerprint].detail)
               for r in run.records if r.fingerprint in reason_of]
    return EmbeddingRun(vectors=run.vectors[keep], records=[run.records[i] for i in keep],
                        skipped=run.skipped + dropped, computed=run.computed, cache_hits=run.cache_hits), dropped


def select_and_load(checked: CheckedBuild, pooled: PooledSource, embedded: Embedded, set_preprocessor: Any,
                    timer: Timer) -> Selected:
    """Select the set and preprocess it; a chosen file the set's preprocessing fails on (NaN, error) is skipped
    and the choice made again."""
    source, config, runtime = pooled.source, checked.config, checked.runtime
    timer.timings["select"] = timer.timings["preprocess"] = 0.0
    while True:
        started = time.perf_counter()
        run = embedded.run
        balancing = balance_for(checked.labelling, run.records, names=source.class_names,
                                background_share=checked.request.source.background_share, seed=config.seed,
                                class_totals=pooled.class_totals)
        selection = select_representatives(run.vectors, balancing.labels, [r.fingerprint for r in run.records], config,
                                           target_embeddings=embedded.target_vectors,
                                           quota_rule=pooled.pooled_rule or balancing.quota_rule,
                                           background=BACKGROUND_NAME if checked.request.source.annotated else None)
        timer.add("select", started)
        started = time.perf_counter()
        chosen = [run.records[i] for i in selection.indices]
        loaded, failures = load_tensors_cached_skipping(chosen, source.root, set_preprocessor, cache_dir=runtime.cache,
                                                        workers=runtime.workers)  # a rebuild decodes nothing
        timer.add("preprocess", started)
        if not failures:
            assert loaded is not None
            return Selected(selection, balancing, balancing.labels, chosen, loaded, embedded)
        run, dropped = _without_contents(run, failures)
        embedded = Embedded(run, sorted(embedded.skipped + dropped, key=lambda s: s.path), embedded.target_vectors,
                            embedded.target_info)
        if loaded is None or not run.records:
            raise no_usable_error(source, embedded.skipped, "training data (for the set's --preprocess)")
