"""Everything ``build`` is asked to do, as frozen parameter objects checked once before any work."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repcurate import tasks
from repcurate.commands.params import ModelSpec, Runtime
from repcurate.data.annotated import is_annotated_source
from repcurate.data.footprint import source_footprint
from repcurate.data.scan import is_list_file
from repcurate.embed import engines
from repcurate.embed.engine import DEFAULT_RAY_TIMEOUT, MAX_RAY_TIMEOUT, EmbeddingEngine, EngineSettings
from repcurate.errors import UsageError
from repcurate.io.outputs import absolute, ensure_writable_target, refuse_overlap
from repcurate.options import MAX_WORKERS, require_int, require_number
from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE
from repcurate.select.pool import parse_pool
from repcurate.select.selection import SelectionConfig
from repcurate.tasks.base import Task

#: Dataset views ``build --emit`` can write beside the set.
EMIT_FORMATS = ("yolo",)


@dataclass(frozen=True)
class TrainSource:
    """The training data: a folder, a CSV/JSONL list, or an annotated dataset (YOLO ``data.yaml`` / COCO JSON /
    segmentation folder) and its ``split``; ``images_dir``: a COCO JSON's image folder; ``task``: the registered
    task that reads the labels; ``pool``: what is read and embedded (:mod:`repcurate.select.pool`)."""

    path: Path
    layout: str = "auto"
    split: str = "train"
    images_dir: str | Path | None = None
    task: str = "classification"
    pool: int | str | None = None
    background_share: float = DEFAULT_BACKGROUND_SHARE

    @property
    def annotated(self) -> bool:
        """Whether the source is an annotated dataset (balanced by object instances)."""
        return is_annotated_source(self.path)

    @property
    def images_path(self) -> Path | None:
        return None if self.images_dir is None else Path(self.images_dir)


@dataclass(frozen=True)
class EngineSpec:
    """The embedding engine that computes what the cache lacks (a :mod:`repcurate.embed.engines` name) and, for
    Ray, the cluster address, model replicas and how long to wait for an answer."""

    name: str = "local"
    address: str | None = None
    actors: int | None = None
    timeout: float = DEFAULT_RAY_TIMEOUT

    def create(self) -> EmbeddingEngine:
        """The checked engine, ready to run (exit 2 / 4 when its options or packages are wrong)."""
        if self.actors is not None:
            require_int(self.actors, "--ray-actors", 1, MAX_WORKERS, keyword="ray_actors")
        require_number(self.timeout, "--ray-timeout", low=0.1, high=MAX_RAY_TIMEOUT, keyword="ray_timeout")
        engine = engines.create(self.name, EngineSettings(address=self.address, actors=self.actors,
                                                          timeout=float(self.timeout)))
        engine.require()
        return engine


@dataclass(frozen=True)
class BuildRequest:
    """One ``build``: the source, the model, the selection, where it runs, what it writes."""

    source: TrainSource
    model: ModelSpec
    selection: dict[str, Any]
    runtime: Runtime
    engine: EngineSpec = field(default_factory=EngineSpec)
    out: Path | None = None
    overwrite: bool = False
    emit: tuple[str, ...] = ()
    match_dir: str | Path | None = None


@dataclass(frozen=True)
class CheckedBuild:
    """A request whose options all passed: the task, the selection config, the resolved runtime and the engine."""

    request: BuildRequest
    labelling: Task
    config: SelectionConfig
    runtime: Runtime
    engine: EmbeddingEngine
    pool_rule: Any


def check_request(request: BuildRequest) -> CheckedBuild:
    """Every option checked (exit 2 naming it) and the output guarded before the model or any image is read."""
    try:
        labelling = tasks.get(request.source.task)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        config = SelectionConfig(**request.selection)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    runtime = request.runtime.checked()
    require_number(request.source.background_share, "--background-share", low=0.0, high=1.0, keyword="background_share")
    _check_emit(request)
    engine = request.engine.create()
    pool_rule = parse_pool(request.source.pool)
    if request.match_dir is not None and config.strategy == "kcenter":
        raise UsageError("--match-dir weights the selection towards the target domain; use --strategy kmeans or random")
    if request.out is not None:
        guard_build_output(request.out, request.source.path, match_dir=request.match_dir, overwrite=request.overwrite,
                           images_dir=request.source.images_dir)
    return CheckedBuild(request, labelling, config, runtime, engine, pool_rule)


def _check_emit(request: BuildRequest) -> None:
    unknown = sorted(set(request.emit) - set(EMIT_FORMATS))
    if unknown:
        raise UsageError(f"--emit {unknown[0]}: unknown format; fix: pass --emit {' or '.join(EMIT_FORMATS)}")
    if request.emit and request.out is None:
        raise UsageError("--emit writes files beside the set; fix: pass --out (out=) too")


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
