"""``load_eval``: scan, sample, preprocess (through the tensor cache) and run the float model on the eval images,
then pick the task that scores them and read its references."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repcurate.data.scan import ImageRecord, ScanResult, SkippedFile
from repcurate.embed.tensor_cache import load_tensors_cached_skipping
from repcurate.errors import InputError, user_code_failed
from repcurate.evaluate.data import EvalData, model_outputs
from repcurate.evaluate.frames import frames_of
from repcurate.evaluate.infer import choose_task
from repcurate.evaluate.records import eval_records
from repcurate.evaluate.source import EvalSource
from repcurate.tasks.base import Task

if TYPE_CHECKING:
    from repcurate.frameworks.base import Framework

log = logging.getLogger("repcurate")


def load_eval(source: EvalSource, *, framework: Framework, float_model: Any, preprocessor: Any,
              manifest: dict[str, Any], model_spec: str, seed: int = 0, calibration_files: set[str] | None = None,
              cache_dir: Path | None = None) -> EvalData:
    """Scan, sample (seeded, at most ``source.max_eval``), preprocess and run the float model on the eval images.
    Refuses eval images that are also calibration images (by content fingerprint). ``source.task`` names a
    registered task; by default detection when a ``postprocess`` (``file.py:fn`` or callable) is given, else the
    task whose eval layout the data has, else the first that accepts the float model's outputs (one score vector
    per image: classification; anything else: fidelity to the float model; :mod:`repcurate.evaluate.infer`).

    The eval images (:meth:`EvalSource.scan`) are a folder or list, whose class labels are the references of a
    classifier (a detector / segmenter is scored against the float model), or an annotated dataset's split:
    its boxes (detection: mAP against ground truth; the task is detection when a postprocess is given or the
    outputs are decoded boxes, else :class:`UsageError`) or masks (segmentation, inferred for class-score-map
    outputs: mIoU against the masks). Bad annotations and unreadable images are left out and listed in
    :attr:`EvalData.skipped`. With ``cache_dir`` the preprocessed eval tensors are cached there by content +
    preprocessing (:mod:`repcurate.embed.tensor_cache`): a second run decodes nothing."""
    scanned = source.scan()
    records, labels_of = eval_records(scanned)
    records = _sample(scanned, records, max_eval=source.max_eval, seed=seed, calibration_files=calibration_files)
    x, records, failures = _tensors(scanned.root, records, preprocessor, cache_dir)
    outputs = _float_outputs(framework, float_model, x, model_spec)
    chosen = choose_task(source, scanned, outputs, framework=framework, float_model=float_model,
                         model_spec=model_spec, frame_of=frames_of(preprocessor, _input_hw(x, framework.channels_last)))
    log.info("scoring the %s task on %d eval images", chosen.name, len(x))
    labels = chosen.references(labels_of(records), outputs, manifest=manifest, class_map=source.class_map)
    _warn_frame(chosen, outputs, labels)
    return EvalData(root=scanned.root, x=x, labels=labels, float_outputs=outputs, task=chosen,
                    skipped=sorted([*scanned.skipped, *failures], key=lambda f: f.path))


def _sample(scanned: ScanResult, records: list[ImageRecord], *, max_eval: int, seed: int,
            calibration_files: set[str] | None) -> list[ImageRecord]:
    """The records scored: none a calibration image, a seeded sample of at most ``max_eval``, at least one."""
    overlap = [r.path for r in records if r.fingerprint in (calibration_files or set())]
    if overlap:
        raise InputError(f"{scanned.root}: {len(overlap)} eval files are also calibration images "
                         f"(e.g. {overlap[0]}); fix: evaluate on data disjoint from the training directory")
    if len(records) > max_eval:
        keep = np.sort(np.random.default_rng(seed).choice(len(records), max_eval, replace=False))
        records = [records[i] for i in keep]
    if not records:
        skipped = scanned.skipped
        why = f" ({len(skipped)} skipped, e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise InputError(f"{scanned.root}: no eval images{why}; fix: pass a folder of held-out images")
    return records


def _tensors(root: Path, records: list[ImageRecord], preprocessor: Any,
             cache_dir: Path | None) -> tuple[np.ndarray, list[ImageRecord], list[SkippedFile]]:
    """The preprocessed eval tensors, the records they are of (the labels stay aligned) and the files that failed."""
    x, failures = load_tensors_cached_skipping(records, root, preprocessor, cache_dir=cache_dir)
    failed = {f.path for f in failures}
    records = [r for r in records if r.path not in failed]
    if x is None:
        raise InputError(f"{root}: no eval image could be decoded and preprocessed ({failures[0].path}: "
                         f"{failures[0].reason}); fix: pass a folder of held-out images the preprocessing accepts")
    return x, records, failures


def _float_outputs(framework: Framework, float_model: Any, x: np.ndarray, model_spec: str) -> list[np.ndarray]:
    """The float model's outputs on the eval tensors (a user model that fails is bad input, named)."""
    try:
        return model_outputs(framework, float_model, x)
    except BaseException as exc:  # a user model raising SystemExit too
        if not user_code_failed(exc):
            raise
        raise InputError(f"{model_spec} failed on eval tensors of shape {x.shape[1:]} "
                         f"({type(exc).__name__}: {str(exc)[:200]}); fix: pass the model's own --preprocess "
                         "(Keras models take channels-last input)") from exc


def _input_hw(x: np.ndarray, channels_last: bool) -> tuple[int, int] | None:
    """The model input's (height, width) of image-shaped tensors, else None."""
    if x.ndim != 4:
        return None
    spatial = x.shape[1:3] if channels_last else x.shape[2:4]
    return int(spatial[0]), int(spatial[1])


def _warn_frame(task: Task, outputs: list[np.ndarray], labels: np.ndarray | None) -> None:
    """Log the task's optional ``frame_warning`` (detection: the float model scores implausibly low on the labels)."""
    frame_warning = getattr(task, "frame_warning", None)
    warning = frame_warning(outputs, labels) if callable(frame_warning) else None
    if warning:
        log.warning("%s", warning)
