"""The set-up ``confirm`` and ``doctor`` share: the set loaded and its trust settled, the model loaded, prepared
and placed on the device MCT is told to use, and the preprocessing (the caller's, else the set's own)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repcurate import trust
from repcurate.commands.params import ModelSpec
from repcurate.errors import UsageError
from repcurate.evaluate import EvalData, EvalSource, load_eval
from repcurate.frameworks.base import Framework
from repcurate.frameworks.loading import LoadedModel, as_preprocessor, load_model, load_recorded_preprocessor
from repcurate.repset import RepresentativeSet, load

log = logging.getLogger("repcurate")

#: Turns the loaded model into the float model a quantizer reads: (framework, model) → (model, rewrites applied).
Prepare = Callable[[Framework, Any], tuple[Any, list[str]]]


@dataclass
class Session:
    """A loaded set and model, ready to quantize and score."""

    repset: RepresentativeSet
    #: How messages name the set (its manifest's path).
    origin: str
    #: Whether code the set names may run (``--trust-set``, or a set this user built and signed).
    trusted: bool
    loaded: LoadedModel
    #: The model as the quantizer reads it, on ``device``.
    float_model: Any
    rewrites: list[str]
    device: str
    spec: ModelSpec

    @property
    def framework(self) -> Framework:
        return self.loaded.framework

    @property
    def manifest(self) -> dict[str, Any]:
        return self.repset.manifest

    @classmethod
    def open(cls, repset: str | Path | RepresentativeSet, spec: ModelSpec, *, trust_set: bool, device: str,
             prepare: Prepare | None = None,
             on_set: Callable[[RepresentativeSet], None] | None = None) -> Session:
        """Load the set (``on_set`` runs its checks before the model is read), settle its trust — a recorded
        preprocessing that is code the set names needs trust when ``spec.preprocess`` is not given
        (:class:`UsageError` up front) —, load the model, ``prepare`` it for the quantizer, and place it and
        MCT's quantized models on ``device`` (already resolved)."""
        loaded_set = repset if isinstance(repset, RepresentativeSet) else load(repset)
        origin = trust.manifest_label(loaded_set.directory)
        trusted = trust.effective_trust(trust_set, loaded_set.directory)  # sets this user built and signed: trusted
        if spec.preprocess is None:
            trust.require(origin, "preprocessing.spec", (loaded_set.manifest.get("preprocessing") or {}).get("spec"),
                          "--preprocess", trust_set=trusted)
        if on_set is not None:
            on_set(loaded_set)
        loaded = load_model(spec.model)
        model, rewrites = prepare(loaded.framework, loaded.model) if prepare is not None else (loaded.model, [])
        model = loaded.framework.place(model, device)
        loaded.framework.mct.set_device(device)  # MCT builds the quantized models where the eval batches go
        for note in rewrites:
            log.info("%s", note)
        return cls(loaded_set, origin, trusted, loaded, model, rewrites, device, spec)

    def preprocessor(self) -> Any:
        """The caller's preprocessing, else the one the set records (:class:`UsageError` when neither loads)."""
        pre = as_preprocessor(self.spec.preprocess) if self.spec.preprocess is not None else None
        if pre is None:
            pre = load_recorded_preprocessor(self.manifest, trust_set=self.trusted, origin=self.origin,
                                             option="--preprocess")
        if pre is None:
            raise UsageError("the set's preprocessing cannot be loaded; pass --preprocess")
        return pre

    def evaluate(self, source: EvalSource, preprocessor: Any, *, calibration_files: set[str], seed: int,
                 cache_dir: Path | None) -> EvalData:
        """``source``'s eval data for this session's float model (:func:`~repcurate.evaluate.load_eval`)."""
        return load_eval(source, framework=self.framework, float_model=self.float_model, preprocessor=preprocessor,
                         manifest=self.manifest, model_spec=self.loaded.spec, seed=seed,
                         calibration_files=calibration_files, cache_dir=cache_dir)
