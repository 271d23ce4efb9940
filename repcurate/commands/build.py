"""``repcurate build`` as a library call: scan → embed → select → preprocess → write."""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from repcurate import tasks, trust
from repcurate.data.annotated import AnnotatedRecord, is_annotated_source, read_annotated, scan_annotated_images
from repcurate.data.footprint import source_footprint
from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.scan import ScanResult, SkippedFile, fingerprint_files, is_list_file, list_source
from repcurate.data.sources import scan
from repcurate.embed import engines
from repcurate.embed.cache import default_cache_dir
from repcurate.embed.engine import DEFAULT_RAY_TIMEOUT, MAX_RAY_TIMEOUT, EmbeddingEngine, EngineSettings
from repcurate.embed.loading import build_embedder
from repcurate.embed.pipeline import EmbeddingRun, embed_records
from repcurate.embed.tensor_cache import load_tensors_cached_skipping
from repcurate.errors import InputError, UsageError
from repcurate.frameworks.base import layer_names
from repcurate.frameworks.device import resolve_device
from repcurate.frameworks.loading import ModelArg, PreprocessArg
from repcurate.io.outputs import absolute, ensure_writable_target, refuse_overlap
from repcurate.io.space import require_free_space
from repcurate.io.yolo_view import yolo_view_files
from repcurate.options import DEFAULT_SIZE, MAX_BATCH_SIZE, MAX_WORKERS, require_int, require_number
from repcurate.repset import SCHEMA_VERSION, RepresentativeSet
from repcurate.select.object_pool import choose_object_pool
from repcurate.select.object_quotas import BACKGROUND_NAME, DEFAULT_BACKGROUND_SHARE
from repcurate.select.pool import choose_pool, parse_pool, pooled_quota_rule
from repcurate.select.projection import build_projection
from repcurate.select.selection import (
    DEFAULT_NEAR_DUPLICATE,
    DEFAULT_OUTLIER_Z,
    SelectionConfig,
    select_representatives,
)
from repcurate.tasks.balancing import balance_for
from repcurate.version import __version__

log = logging.getLogger("repcurate")

#: Dataset views ``build --emit`` can write beside the set.
EMIT_FORMATS = ("yolo",)


@dataclass
class BuildResult:
    """The representative set plus run statistics (timings are not part of the manifest)."""

    representative_set: RepresentativeSet
    out: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    embedded: int = 0
    cache_hits: int = 0

    kind: ClassVar[str] = "build"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: :meth:`summary`."""
        return self.summary()

    def passed(self) -> bool:
        """``build`` has no gate: a set that was written passes (exit code 0)."""
        return True

    @property
    def manifest(self) -> dict[str, Any]:
        return self.representative_set.manifest

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary for the command line."""
        m = self.manifest
        return {
            "out": None if self.out is None else str(self.out),
            "selected": len(m["samples"]),
            "counts": m["counts"],
            "classes": m["classes"],
            "unmet_quotas": m["unmet_quotas"],
            **({"objects": {key: m["objects"][key] for key in ("classes", "unmet_quotas", "background")
                            if key in m["objects"]}} if "objects" in m else {}),
            "empty_classes": m["empty_classes"],
            "empty_class_reasons": m["empty_class_reasons"],
            "skipped_by_reason": dict(sorted(Counter(s["reason"] for s in m["skipped"]).items())),
            "coverage": {"curated_mean": m["coverage"]["curated"]["mean"],
                         "curated_max": m["coverage"]["curated"]["max"],
                         "random_mean": m["coverage"]["random"]["mean"]["mean"],
                         "random_max": m["coverage"]["random"]["max"]["mean"],
                         **_labelled_coverage(m["coverage"]), "note": coverage_note(m)},
            "domain_match": m.get("domain_match"),
            "pool": {"files": m["pool"]["files"], "pooled": m["pool"]["pooled"]} if "pool" in m else None,
            "embedded": self.embedded,
            "cache_hits": self.cache_hits,
            "seconds": {k: round(v, 2) for k, v in self.timings.items()},
        }


def _sample_objects(record: Any) -> dict[str, Any]:
    """An annotated sample's image size and boxes (``[class id, x0, y0, x1, y1]`` in pixels of the original image,
    crowd regions left out), for the report's thumbnails; nothing for other records."""
    if not isinstance(record, AnnotatedRecord):
        return {}
    return {"image_size": [record.width, record.height],
            "boxes": [[b.cls, round(b.x0, 2), round(b.y0, 2), round(b.x1, 2), round(b.y1, 2)]
                      for b in record.boxes if not b.crowd]}


def _labelled_coverage(coverage: dict[str, Any]) -> dict[str, float]:
    """The coverage of the labelled images alone (annotated sources: background images excluded), when measured."""
    curated, random = coverage["curated"].get("labelled"), coverage["random"].get("labelled")
    if curated is None or random is None:
        return {}
    return {"labelled_curated_mean": curated["mean"], "labelled_random_mean": random["mean"]["mean"]}


def coverage_note(manifest: dict[str, Any]) -> str | None:
    """One sentence saying why the curated set's mean coverage is worse than random's when the quota rules force
    it (equal shares per class, the background share), else ``None``."""
    coverage = manifest["coverage"]
    curated, random = coverage["curated"]["mean"], coverage["random"]["mean"]["mean"]
    if curated <= random:
        return None
    balance = manifest["parameters"].get("balance")
    objects = manifest.get("objects")
    if isinstance(objects, dict):
        share = (objects.get("background") or {}).get("share", DEFAULT_BACKGROUND_SHARE)
        labelled = _labelled_coverage(coverage)
        over = (f"; over the labelled images alone curated {labelled['labelled_curated_mean']:.4f} vs random "
                f"{labelled['labelled_random_mean']:.4f}") if labelled else ""
        return (f"curated coverage is worse than random because the quotas fix the set's make-up ({balance} shares "
                f"of object classes and sizes, {share:.0%} background images) while random draws follow the pool's "
                f"density{over}")
    if balance == "uniform" and len(manifest["classes"]) > 1:
        return ("curated coverage is worse than random because --balance uniform gives every class an equal share "
                "while random draws follow the pool's density (common classes get more images); "
                "--balance proportional follows it")
    return None


def _embed(source: ScanResult, embedder: Any, *, cache_dir: Path | None, batch_size: int, workers: int,
           progress: bool | None, desc: str, engine: EmbeddingEngine | None = None) -> EmbeddingRun:
    return embed_records(source.records, source.root, embedder, cache_dir=cache_dir, batch_size=batch_size,
                         workers=workers, progress=progress, max_pixels=DEFAULT_MAX_PIXELS, desc=desc, engine=engine)


def _without_contents(run: EmbeddingRun, failures: list[SkippedFile]) -> tuple[EmbeddingRun, list[SkippedFile]]:
    """``run`` without every record whose content failed (identical bytes fail alike), and their skip entries."""
    failed_at = {f.path: f for f in failures}
    reason_of = {r.fingerprint: failed_at[r.path] for r in run.records if r.path in failed_at}
    keep = [i for i, r in enumerate(run.records) if r.fingerprint not in reason_of]
    dropped = [SkippedFile(r.path, reason_of[r.fingerprint].reason, reason_of[r.fingerprint].detail)
               for r in run.records if r.fingerprint in reason_of]
    return EmbeddingRun(vectors=run.vectors[keep], records=[run.records[i] for i in keep],
                        skipped=run.skipped + dropped, computed=run.computed, cache_hits=run.cache_hits), dropped


def _no_usable_error(source: ScanResult, skipped: list[SkippedFile], what: str) -> InputError:
    reasons = Counter(s.reason for s in skipped)
    detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "no image files found"
    return InputError(f"{source.root}: no usable image in the {what} ({detail}); "
                      "fix: point to a folder of JPEG/PNG/BMP/GIF/TIFF/WebP images")


def guard_build_output(out: Path, train_dir: Path, *, match_dir: str | Path | None, overwrite: bool,
                       images_dir: str | Path | None = None) -> None:
    """Refuse (exit 2, before any work) an ``out`` that would overwrite or delete an input: one that is, contains
    or lies inside a file or data folder the training source or ``match_dir`` reads (see
    :mod:`repcurate.data.footprint`), that is or contains the folder of a list file, or that exists and is not
    repcurate's own output (see :mod:`repcurate.io.outputs`)."""
    if Path(train_dir).is_file():
        list_folder = absolute(train_dir).parent
        if absolute(out) == list_folder or absolute(out) in list_folder.parents:
            kind = "list file" if is_list_file(Path(train_dir)) else "dataset file"
            raise UsageError(f"--out {out} is or contains the folder of the {kind} {train_dir}; repcurate never "
                             f"writes over its inputs; fix: choose an --out that does not hold {train_dir}")
    refuse_overlap(out, source_footprint(train_dir, images_dir=images_dir).inputs("training")
                   + source_footprint(match_dir).inputs("--match-dir"), option="--out")
    ensure_writable_target(out, overwrite=overwrite)


def _empty_class_reasons(class_folders: list[str], usable: set[str | None], skipped: list[SkippedFile]) -> dict[str, str]:
    """Why each class folder gave no usable image: no image files in it, or what was skipped there."""
    by_class: dict[str, Counter[str]] = {}
    for s in skipped:
        by_class.setdefault(s.path.split("/", 1)[0], Counter())[s.reason] += 1
    reasons: dict[str, str] = {}
    for c in sorted(set(class_folders) - {u for u in usable if u is not None}):
        counts = by_class.get(c)
        reasons[c] = ("no image files" if not counts else
                      "no usable image (" + ", ".join(f"{n} {r}" for r, n in sorted(counts.items())) + " skipped)")
    return reasons


def _coverage_population(pool_info: dict[str, Any], usable: int) -> str:
    """What the coverage figures are measured over, in words (the pool, or every usable image)."""
    if pool_info["pooled"] >= pool_info["files"]:
        return f"every usable image of the folder ({usable})"
    return (f"the candidate pool: {usable} usable of {pool_info['pooled']} pooled of {pool_info['files']} image files "
            "(a seeded stratified random sample per class or object class); they estimate the coverage of the whole folder's "
            "distribution, not the distance of every file to the set")


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
    try:
        labelling = tasks.get(task)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        config = SelectionConfig(size=size, balance=balance, strategy=strategy, seed=seed,
                                 include_outliers=include_outliers, outlier_z=outlier_z,
                                 near_duplicate=near_duplicate)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    require_int(batch_size, "--batch-size", 1, MAX_BATCH_SIZE, keyword="batch_size")
    require_int(workers, "--workers", 1, MAX_WORKERS)
    require_number(background_share, "--background-share", low=0.0, high=1.0, keyword="background_share")
    unknown = sorted(set(emit) - set(EMIT_FORMATS))
    if unknown:
        raise UsageError(f"--emit {unknown[0]}: unknown format; fix: pass --emit {' or '.join(EMIT_FORMATS)}")
    if emit and out is None:
        raise UsageError("--emit writes files beside the set; fix: pass --out (out=) too")
    if ray_actors is not None:
        require_int(ray_actors, "--ray-actors", 1, MAX_WORKERS, keyword="ray_actors")
    device = resolve_device(device)
    require_number(ray_timeout, "--ray-timeout", low=0.1, high=MAX_RAY_TIMEOUT, keyword="ray_timeout")
    embedding_engine = engines.create(engine, EngineSettings(address=ray_address, actors=ray_actors,
                                                             timeout=float(ray_timeout)))
    embedding_engine.require()
    pool_rule = parse_pool(pool)
    annotated = is_annotated_source(Path(train_dir))
    if match_dir is not None and strategy == "kcenter":
        raise UsageError("--match-dir weights the selection towards the target domain; use --strategy kmeans or random")
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        guard_build_output(out_path, Path(train_dir), match_dir=match_dir, overwrite=overwrite, images_dir=images_dir)
    cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) if use_cache else None
    timings: dict[str, float] = {}

    started = time.perf_counter()
    embedder, set_preprocessor = build_embedder(model, layer=layer, preprocess=preprocess, device=device)
    timings["load_model"] = time.perf_counter() - started

    started = time.perf_counter()
    class_totals: list[int] | None = None
    if annotated:  # labels of every image are read; only the per-object-class pool is fingerprinted and embedded
        dataset = read_annotated(Path(train_dir), split, None if images_dir is None else Path(images_dir))
        images = sorted(dataset.images, key=lambda image: image.path.as_posix())
        candidates = len(images) + len(dataset.skipped)
        object_pool = choose_object_pool(images, dataset.names, pool_rule, size=config.size, balance=config.balance,
                                         seed=seed, background_share=background_share)
        pooled_images = [images[i] for i in object_pool.rows]
        source = scan_annotated_images(Path(train_dir), dataset, pooled_images, workers=max(2, workers))
        pooled_paths = [Path(os.path.relpath(image.path, source.root)).as_posix() for image in pooled_images]
        pool_info = object_pool.manifest_section(pooled_paths, seed)
        class_totals = None if object_pool.complete else [int(n) for n in object_pool.class_instances]
        pooled_rule = None
        del dataset, images, pooled_images, pooled_paths
    else:
        listing = list_source(Path(train_dir), layout=layout, progress=progress)
        candidates = len(listing.files) + len(listing.skipped)
        drawn = choose_pool(labelling.labels(listing.files), pool_rule, size=config.size, balance=config.balance, seed=seed,
                            quota_rule=labelling.quotas)
        pooled_files = [listing.files[i] for i in drawn.rows]
        source = fingerprint_files(listing, pooled_files, workers=max(2, workers), progress=progress)
        pool_info = drawn.manifest_section([f.path for f in pooled_files], seed)
        pooled_rule = None if drawn.complete else pooled_quota_rule(labelling.quotas, drawn.class_files)
        del listing, pooled_files  # a million entries: not needed past this point
    timings["scan"] = time.perf_counter() - started
    log.info("scanned %s: %d image files (%d in the pool), %d skipped", source.root, pool_info["files"],
             len(source.records), len(source.skipped))
    if out_path is not None:  # the set's size is known now: a disk that cannot hold it is refused before embedding
        require_free_space(out_path, min(config.size, len(source.records)) * set_preprocessor.sample_bytes())

    started = time.perf_counter()
    run = _embed(source, embedder, cache_dir=cache, batch_size=batch_size, workers=workers,
                 progress=progress, desc="embedding train", engine=embedding_engine)
    skipped = sorted(source.skipped + run.skipped, key=lambda s: s.path)
    if not run.records:
        raise _no_usable_error(source, skipped, "training data")
    target_vectors = None
    target_info: dict[str, Any] | None = None
    if match_dir is not None:
        target = scan(Path(match_dir), layout="flat", workers=max(2, workers))
        target_run = _embed(target, embedder, cache_dir=cache, batch_size=batch_size, workers=workers,
                            progress=progress, desc="embedding target", engine=embedding_engine)
        if len(target_run.records) < 2:
            raise _no_usable_error(target, target.skipped + target_run.skipped, "--match-dir folder")
        target_vectors = target_run.vectors
        target_info = {"dir": target.root.as_posix(), "images": len(target_run.records),
                       "skipped": len(target.skipped) + len(target_run.skipped)}
    timings["embed"] = time.perf_counter() - started

    timings["select"] = timings["preprocess"] = 0.0
    while True:  # a chosen file the set's preprocessing fails on (NaN, error) is skipped and the choice made again
        started = time.perf_counter()
        balancing = balance_for(labelling, run.records, names=source.class_names, background_share=background_share,
                                seed=seed, class_totals=class_totals)
        labels = balancing.labels
        selection = select_representatives(run.vectors, labels, [r.fingerprint for r in run.records], config,
                                           target_embeddings=target_vectors, quota_rule=pooled_rule or balancing.quota_rule,
                                           background=BACKGROUND_NAME if annotated else None)
        timings["select"] += time.perf_counter() - started
        started = time.perf_counter()
        chosen = [run.records[i] for i in selection.indices]
        loaded, failures = load_tensors_cached_skipping(chosen, source.root, set_preprocessor, cache_dir=cache,
                                                        workers=workers)  # a rebuild of the same set decodes nothing
        timings["preprocess"] += time.perf_counter() - started
        if not failures:
            break
        run, dropped = _without_contents(run, failures)
        skipped = sorted(skipped + dropped, key=lambda s: s.path)
        if loaded is None or not run.records:
            raise _no_usable_error(source, skipped, "training data (for the set's --preprocess)")
    assert loaded is not None
    tensors = loaded
    started = time.perf_counter()
    projection, projection_info = build_projection(run.vectors, labels, selection.indices,
                                                   [q.label for q in selection.quotas], seed=seed)
    timings["select"] += time.perf_counter() - started

    usable_labels = {r.label for r in run.records}
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "repcurate", "version": __version__},
        "command": "build",
        "root": source.root.as_posix(),
        "train_source": Path(train_dir).resolve().as_posix(),
        "layout": source.layout,
        "parameters": {**config.to_dict(), "match_dir": None if match_dir is None else Path(match_dir).resolve().as_posix(),
                       "layer": ",".join(layer_names(layer)) or None, **selection.near_duplicate_record()},
        "seed": seed,
        "model": {"spec": embedder.model_spec, "framework": embedder.framework, "layer": embedder.layer,
                  "fingerprint": embedder.fingerprint, "embedding_dim": int(run.vectors.shape[1])},
        "embedding_preprocessing": {"spec": embedder.preprocessor.spec, "fingerprint": embedder.preprocessor.fingerprint},
        "preprocessing": {"spec": set_preprocessor.spec, "fingerprint": set_preprocessor.fingerprint,
                          "sample_shape": list(tensors.shape[1:]), "dtype": str(tensors.dtype)},
        "counts": {"candidates": candidates, "usable": len(run.records),
                   "skipped": len(skipped), "exact_duplicates": len(selection.exact_duplicates),
                   "outliers_excluded": len(selection.outliers), "selected": len(chosen)},
        "classes": [{**q.to_dict(), "selected": selection.selected_per_class.get(q.label, 0),
                     **({"name": BACKGROUND_NAME} if annotated and q.label is None else {})} for q in selection.quotas],
        "unmet_quotas": [q.to_dict() for q in selection.quotas if q.unmet],
        "empty_classes": sorted(c for c in source.class_folders if c not in usable_labels),
        "empty_class_reasons": _empty_class_reasons(source.class_folders, usable_labels, skipped),
        "samples": [{"index": i, "path": r.path, "label": labels[row], "content_fingerprint": r.fingerprint,
                     "size_bytes": r.size_bytes, **_sample_objects(r)}
                    for i, (row, r) in enumerate(zip(selection.indices, chosen))],
        "skipped": [s.to_dict() for s in skipped],
        "duplicates": [{"path": run.records[row].path, "duplicate_of": run.records[first].path}
                       for row, first in sorted(selection.exact_duplicates.items())],
        "coverage": {**selection.coverage, "measured_against": _coverage_population(pool_info, len(run.records))},
        "pool": pool_info,
        "domain_match": None if target_info is None else {**target_info, **(selection.domain_match or {})},
        "projection": projection_info,
    }
    objects = balancing.report(selection.indices, balance)
    if objects is not None:
        manifest["objects"] = {"split": split, "images_dir": None if images_dir is None else Path(images_dir).resolve().as_posix(),
                               **objects}
    extra_files: dict[str, bytes] = {}
    if "yolo" in emit and out_path is not None:
        names = source.class_names or sorted(source.class_folders)
        extra_files.update(yolo_view_files(absolute(out_path), [source.root / r.path for r in chosen], names))
    representative_set = RepresentativeSet(tensors=tensors, manifest=manifest, projection=projection)
    if out_path is not None:
        started = time.perf_counter()
        representative_set.save(out_path, overwrite=overwrite, extra_files=extra_files, sign=trust.sign_manifest)
        timings["write"] = time.perf_counter() - started
    return BuildResult(representative_set=representative_set, out=out_path, timings=timings,
                       embedded=run.computed, cache_hits=run.cache_hits)
