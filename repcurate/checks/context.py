"""Inputs shared by all checks, computed lazily once (embeddings, eval tensors, pipelines)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from repcurate import trust
from repcurate.data.images import decode_image
from repcurate.data.layouts import ANNOTATED_LAYOUTS
from repcurate.data.preprocess import Preprocessor, make_preprocessor
from repcurate.data.scan import ImageRecord, ScanResult
from repcurate.embed.loading import build_embedder
from repcurate.embed.pipeline import EmbeddingRun, embed_records
from repcurate.frameworks.base import layer_names
from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME
from repcurate.frameworks.loading import ModelArg, load_model, load_recorded_preprocessor
from repcurate.repset import RepresentativeSet

log = logging.getLogger("repcurate")

#: Eval images run through the pipelines for tensor statistics and activations.
EVAL_TENSOR_SAMPLE = 256


class Unavailable(Exception):
    """An input a check needs cannot be had (the check is skipped with this message).

    For inputs that are optional by design or belong to this machine: no ``--model``, an unlabelled
    set, a recorded spec that cannot be loaded here. A record missing from the set itself is
    :class:`MissingInput`.
    """


class MissingInput(Exception):
    """The set lacks a record a check needs (e.g. its ``preprocessing``): the check fails with this
    message, which names the record and the fix. ``what`` is the missing record's name."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


def _missing_record(what: str, role: str, alternative: str = "") -> MissingInput:
    also = f", or {alternative}" if alternative else ""
    return MissingInput(what, f"the set's manifest records no {what} ({role}); fix: rebuild the set with "
                              f"repcurate build{also}")


#: What a check may declare in ``Check.uses``: the evaluation pipeline, and embeddings of set and eval images.
EVAL_PIPELINE, EMBEDDINGS = "eval_pipeline", "embeddings"


def require_trusted_code(manifest: dict[str, Any], origin: str, *, eval_preprocess: Any, model: ModelArg,
                         trust_set: bool, uses: set[str]) -> None:
    """Up front, before any heavy work: refuse (:class:`UsageError`) when the checks that will run need code
    the set's manifest names (its model or preprocessing) and nothing on the command line replaces it,
    unless ``trust_set`` (see :mod:`repcurate.trust`)."""
    pre_spec = (manifest.get("preprocessing") or {}).get("spec")
    needs_recorded_pre = False
    if EVAL_PIPELINE in uses and eval_preprocess is None:
        needs_recorded_pre = True
    if EMBEDDINGS in uses:
        if model is None:
            model_spec = (manifest.get("model") or {}).get("spec")
            trust.require(origin, "model.spec", model_spec, "--model", trust_set=trust_set)
            user_model = model_spec != DEFAULT_MODEL_NAME
        else:
            user_model = model != DEFAULT_MODEL_NAME
        needs_recorded_pre |= user_model and eval_preprocess is None
    if needs_recorded_pre:
        trust.require(origin, "preprocessing.spec", pre_spec, "--eval-preprocess", trust_set=trust_set)


class CheckContext:
    """Everything the checks look at. Expensive pieces are computed on first use and shared."""

    def __init__(self, repset: RepresentativeSet, eval_source: ScanResult, *,
                 eval_preprocess: str | Any | None = None, model: ModelArg = None,
                 cache_dir: Path | None = None, seed: int = 0, batch_size: int = 32, workers: int = 2,
                 trust_set: bool = False, layer: str | Sequence[str] | None = None, device: str = "cpu") -> None:
        self.repset = repset
        self.trust_set = trust_set
        self.origin = trust.manifest_label(repset.directory)
        self.manifest = repset.manifest
        self.eval_source = eval_source
        self.seed = seed
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.workers = workers
        #: Where the embeddings and model passes run (a resolved name, see :mod:`repcurate.frameworks.device`).
        self.device = device
        self._model_arg = model
        self._eval_preprocess_arg = eval_preprocess
        self.model_given = model is not None
        #: The feature layer(s) embeddings are taken from: ``layer`` when given, else the ``--layer`` the set was
        #: built with (its manifest's ``parameters.layer``), else the framework's default rule, as at build time.
        self.layer = layer_names(layer) or layer_names((self.manifest.get("parameters") or {}).get("layer"))

    # ---------------------------------------------------------------- pipelines
    @cached_property
    def repset_root(self) -> Path:
        return Path(self.manifest["root"])

    @property
    def recorded_preprocessing(self) -> dict[str, Any]:
        """The manifest's ``preprocessing`` record (:class:`MissingInput` when the set has none)."""
        info = self.manifest.get("preprocessing")
        if not isinstance(info, dict) or not isinstance(info.get("spec"), str) or not info["spec"]:
            raise _missing_record("preprocessing", "the pipeline the set's tensors were made with")
        return info

    @property
    def recorded_model_spec(self) -> str:
        """The manifest's ``model.spec`` (:class:`MissingInput` when the set has none)."""
        info = self.manifest.get("model")
        if not isinstance(info, dict) or not isinstance(info.get("spec"), str) or not info["spec"]:
            raise _missing_record("model", "the model the set was selected with", "pass --model")
        return info["spec"]

    @cached_property
    def repset_preprocessor(self) -> Preprocessor | None:
        """The preprocessing the set was built with, when it can be loaded again (same behaviour) and may run:
        repcurate's own, or any recorded code with ``trust_set`` (else None); :class:`MissingInput` when the
        manifest records none."""
        info = self.recorded_preprocessing
        if not trust.allowed(info.get("spec"), self.trust_set):
            return None
        pre = load_recorded_preprocessor(self.manifest, trust_set=self.trust_set, origin=self.origin)
        if pre is not None and pre.fingerprint != info.get("fingerprint"):
            log.warning("the repset's preprocessing %s now behaves differently than at build time", pre.spec)
        return pre

    @cached_property
    def eval_preprocessor(self) -> Preprocessor:
        if self._eval_preprocess_arg is not None:
            if isinstance(self._eval_preprocess_arg, Preprocessor):
                return self._eval_preprocess_arg
            return make_preprocessor(self._eval_preprocess_arg)
        if self.repset_preprocessor is None:
            spec = (self.manifest.get("preprocessing") or {}).get("spec")
            if not trust.allowed(spec, self.trust_set):
                raise trust.refusal(self.origin, "preprocessing.spec", spec, "--eval-preprocess")
            raise Unavailable("the repset's preprocessing cannot be loaded; pass --eval-preprocess")
        return self.repset_preprocessor

    # ---------------------------------------------------------------- records
    @cached_property
    def repset_records(self) -> list[ImageRecord]:
        return [ImageRecord(s["path"], s["label"], s.get("size_bytes", 0), s["content_fingerprint"]) for s in self.manifest["samples"]]

    @property
    def eval_records(self) -> list[ImageRecord]:
        return self.eval_source.records

    @cached_property
    def eval_object_classes(self) -> list[str] | None:
        """The object classes (names) present in an annotated eval dataset's boxes (YOLO / COCO) or masks
        (segmentation folder; crowd regions excluded), sorted; None when the eval data is a folder or list."""
        if self.eval_source.layout not in ANNOTATED_LAYOUTS:
            return None
        names = self.eval_source.class_names
        ids = {box.cls for record in self.eval_records for box in getattr(record, "boxes", ()) if not box.crowd}
        return sorted(names[i] if i < len(names) else f"class_{i}" for i in ids)

    @cached_property
    def eval_labelled(self) -> bool:
        return any(r.label is not None for r in self.eval_records)

    def eval_sample_indices(self, count: int) -> np.ndarray:
        """A seeded sample of eval record indices (all when there are fewer)."""
        n = len(self.eval_records)
        if n <= count:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, count, replace=False))

    # ---------------------------------------------------------------- embeddings
    @cached_property
    def embedder(self) -> Any:
        spec = self._model_arg if self._model_arg is not None else self.recorded_model_spec
        if isinstance(spec, str) and spec != DEFAULT_MODEL_NAME and not trust.names_code(spec):
            raise Unavailable(f"the repset's model {spec!r} cannot be loaded again; pass --model")
        if spec == DEFAULT_MODEL_NAME:  # the bundled model brings its own preprocessing
            embedder, _ = build_embedder(spec, layer=self.layer or None, preprocess=None, device=self.device)
            return self._same_layer(embedder)
        if self._model_arg is None:
            if not self.trust_set:
                raise trust.refusal(self.origin, "model.spec", spec, "--model")
            trust.announce("model.spec", spec)
        pre = self.repset_preprocessor
        if pre is None and self._eval_preprocess_arg is not None:
            pre = self.eval_preprocessor  # named on the command line: the model's input pipeline
        if pre is None:
            raise Unavailable("the repset's preprocessing cannot be loaded to feed its model; pass --eval-preprocess")
        embedder, _ = build_embedder(spec, layer=self.layer or None, preprocess=pre, device=self.device)
        return self._same_layer(embedder)

    @property
    def layer_used(self) -> str | None:
        """The layer(s) the embeddings came from (comma-separated), once embedded; else the ones asked for."""
        embedder = self.__dict__.get("embedder")
        return embedder.layer if embedder is not None else (",".join(self.layer) or None)

    def _same_layer(self, embedder: Any) -> Any:
        """``embedder``, after warning when its layer differs from the one the set was built with."""
        recorded = (self.manifest.get("model") or {}).get("layer")
        if recorded and embedder.layer != recorded:
            log.warning("embedding with layer %s, but the set was built with layer %s: set and eval embeddings "
                        "are comparable with each other, not with the build's", embedder.layer, recorded)
        return embedder

    def _embed(self, records: list[ImageRecord], root: Path, desc: str) -> EmbeddingRun:
        return embed_records(records, root, self.embedder, cache_dir=self.cache_dir, batch_size=self.batch_size,
                             workers=self.workers, progress=None, desc=desc)

    @cached_property
    def repset_embeddings(self) -> np.ndarray:
        run = self._embed(self.repset_records, self.repset_root, "embedding repset")
        if len(run.records) != len(self.repset_records):
            missing = sorted({r.path for r in self.repset_records} - {r.path for r in run.records})
            raise Unavailable(f"{len(missing)} repset files can no longer be read (e.g. {missing[0]})")
        return run.vectors

    @cached_property
    def eval_run(self) -> EmbeddingRun:
        run = self._embed(self.eval_records, self.eval_source.root, "embedding eval")
        if len(run.records) < 2:
            raise Unavailable("fewer than 2 usable eval images")
        return run

    # ---------------------------------------------------------------- tensors
    def pipeline_output(self, preprocessor: Preprocessor, path: Path) -> np.ndarray:
        return preprocessor(decode_image(path).image)

    @cached_property
    def eval_tensors(self) -> np.ndarray:
        """A seeded sample of eval images through the evaluation pipeline."""
        outputs = []
        for index in self.eval_sample_indices(EVAL_TENSOR_SAMPLE):
            record = self.eval_records[int(index)]
            try:
                outputs.append(self.pipeline_output(self.eval_preprocessor, self.eval_source.root / record.path))
            except Exception:  # noqa: BLE001 - unreadable eval files are reported by the scan, not here
                continue
        if not outputs:
            raise Unavailable("no eval image could be preprocessed")
        shapes = {o.shape for o in outputs}
        if len(shapes) > 1:
            raise Unavailable(f"the evaluation pipeline returns several shapes: {sorted(shapes)}")
        return np.stack(outputs).astype(np.float32)

    @cached_property
    def loaded_model(self) -> Any:
        """The float model for activation statistics (only when --model was given)."""
        if self._model_arg is None:
            raise Unavailable("no --model given")
        loaded = load_model(self._model_arg)
        loaded.model = loaded.framework.place(loaded.model, self.device)
        return loaded
