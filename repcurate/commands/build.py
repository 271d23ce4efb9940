"""``repcurate build`` as a library call: scan → embed → select → preprocess → write."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from repcurate import trust
from repcurate.commands.building.manifest import build_manifest
from repcurate.commands.building.request import EMIT_FORMATS, BuildRequest, EngineSpec, TrainSource, check_request, guard_build_output
from repcurate.commands.building.result import BuildResult, coverage_note
from repcurate.commands.building.steps import Timer, embed, pool_annotated, pool_listed, select_and_load
from repcurate.commands.params import ModelSpec, Runtime
from repcurate.embed.engine import DEFAULT_RAY_TIMEOUT
from repcurate.embed.loading import build_embedder
from repcurate.frameworks.loading import ModelArg, PreprocessArg
from repcurate.io.outputs import absolute
from repcurate.io.space import require_free_space
from repcurate.io.yolo_view import yolo_view_files
from repcurate.options import DEFAULT_SIZE
from repcurate.repset import RepresentativeSet
from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE
from repcurate.select.projection import build_projection
from repcurate.select.selection import DEFAULT_NEAR_DUPLICATE, DEFAULT_OUTLIER_Z

log = logging.getLogger("repcurate")

__all__ = ["EMIT_FORMATS", "BuildRequest", "BuildResult", "TrainSource", "build", "coverage_note", "guard_build_output",
           "run_build"]


def build(
    train_dir: str | Path,
    out: str | Path | None = None,
    *,
    size: int = DEFAULT_SIZE,
    balance: str = "uniform",
    strategy: str = "kmeans",
    seed: int = 0,
    model: ModelArg = None,
    layer: str | Sequence[str] | None = None,
    preprocess: PreprocessArg = None,
    match_dir: str | Path | None = None,
    layout: str = "auto",
    include_outliers: bool = False,
    outlier_z: float = DEFAULT_OUTLIER_Z,
    near_duplicate: float = DEFAULT_NEAR_DUPLICATE,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int = 32,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool | None = None,
    task: str = "classification",
    split: str = "train",
    images_dir: str | Path | None = None,
    background_share: float = DEFAULT_BACKGROUND_SHARE,
    emit: tuple[str, ...] | list[str] = (),
    device: str = "auto",
    engine: str = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
    pool: int | str | None = None,
    ray_timeout: float = DEFAULT_RAY_TIMEOUT,
) -> BuildResult:
    """Curate a representative set from ``train_dir`` (a folder, a CSV/JSONL list, or an annotated dataset:
    a YOLO ``data.yaml`` / COCO ``instances_*.json`` / segmentation folder, its ``split``; ``images_dir``: the
    folder a COCO JSON's image paths are relative to). Annotated data is balanced by object instances
    (:mod:`repcurate.select.object_quotas`; ``background_share`` of the set goes to images without objects).

    ``model``: the model to be quantized (spec string or ``nn.Module`` / Keras model; default the
    bundled EfficientNet-Lite0); ``preprocess``: the evaluation preprocessing (spec or callable),
    which defines the set's tensors. ``task`` (a registered :mod:`repcurate.tasks` name) reads the labels
    and sets the per-label quotas. ``pool`` (``"all"``, ``"auto"``/None or files per class; see
    :mod:`repcurate.select.pool`) limits what is read and embedded to a seeded stratified random sample of
    every class of a class-folder or list dataset, or of every object class of an annotated dataset (its labels are
    read whole; :mod:`repcurate.select.object_pool`).
    With ``out`` the set is written there atomically; ``emit=("yolo",)`` adds
    an Ultralytics ``data.yaml`` + ``images.txt`` naming the curated images (:mod:`repcurate.io.yolo_view`). Returns a
    :class:`BuildResult` whose ``representative_set.mct_data_gen()`` feeds MCT directly. ``device`` (``auto``,
    ``cpu``, ``cuda``, ``cuda:N``) runs the embedding model there; ``engine`` (a registered
    :mod:`repcurate.embed.engines` name: ``local``, ``ray``) computes the embeddings the cache lacks, ``ray`` on the
    cluster at ``ray_address`` (or ``$RAY_ADDRESS``; default a local one) with ``ray_actors`` model replicas,
    giving up (exit 2) when nothing answers at the address within ``ray_timeout`` seconds.
    """
    source = TrainSource(Path(train_dir), layout=layout, split=split, images_dir=images_dir, task=task, pool=pool,
                         background_share=background_share)
    selection = {"size": size, "balance": balance, "strategy": strategy, "seed": seed,
                 "include_outliers": include_outliers, "outlier_z": outlier_z, "near_duplicate": near_duplicate}
    runtime = Runtime(device=device, cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size, workers=workers,
                      progress=progress)
    return run_build(BuildRequest(source=source, model=ModelSpec(model, layer, preprocess), selection=selection,
                                  runtime=runtime, engine=EngineSpec(engine, ray_address, ray_actors, ray_timeout),
                                  out=Path(out) if out is not None else None, overwrite=overwrite, emit=tuple(emit),
                                  match_dir=match_dir))


def run_build(request: BuildRequest) -> BuildResult:
    """:func:`build` on a request: check → load the model → pool → embed → select and preprocess → write."""
    checked = check_request(request)
    timer = Timer()
    started = time.perf_counter()
    embedder, set_preprocessor = build_embedder(request.model.model, layer=request.model.layer,
                                                preprocess=request.model.preprocess, device=checked.runtime.device)
    timer.add("load_model", started)
    started = time.perf_counter()
    pooled = pool_annotated(checked) if request.source.annotated else pool_listed(checked)
    timer.add("scan", started)
    source = pooled.source
    log.info("scanned %s: %d image files (%d in the pool), %d skipped", source.root, pooled.pool_info["files"],
             len(source.records), len(source.skipped))
    if request.out is not None:  # the set's size is known now: a disk that cannot hold it is refused before embedding
        require_free_space(request.out, min(checked.config.size, len(source.records)) * set_preprocessor.sample_bytes())
    started = time.perf_counter()
    embedded = embed(checked, embedder, pooled)
    timer.add("embed", started)
    chosen = select_and_load(checked, pooled, embedded, set_preprocessor, timer)
    started = time.perf_counter()
    projection, projection_info = build_projection(chosen.embedded.run.vectors, chosen.labels, chosen.selection.indices,
                                                   [q.label for q in chosen.selection.quotas], seed=checked.config.seed)
    timer.add("select", started)
    manifest = build_manifest(checked, pooled, chosen, embedder, set_preprocessor, projection_info)
    representative_set = RepresentativeSet(tensors=chosen.tensors, manifest=manifest, projection=projection)
    if request.out is not None:
        extra_files: dict[str, bytes] = {}
        if "yolo" in request.emit:
            names = source.class_names or sorted(source.class_folders)
            extra_files.update(yolo_view_files(absolute(request.out), [source.root / r.path for r in chosen.chosen], names))
        started = time.perf_counter()
        representative_set.save(request.out, overwrite=request.overwrite, extra_files=extra_files,
                                sign=trust.sign_manifest)
        timer.add("write", started)
    run = chosen.embedded.run
    return BuildResult(representative_set=representative_set, out=request.out, timings=timer.timings,
                       embedded=run.computed, cache_hits=run.cache_hits)
