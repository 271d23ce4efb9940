"""``export_set``: a verified set written as the files one toolchain reads (``repcurate export``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.data.footprint import set_footprint
from repcurate.errors import InputError, UsageError
from repcurate.export.base import LAYOUTS, Exporter, ExportPlan, FileContent, ModelInput
from repcurate.export.model_inputs import onnx_inputs
from repcurate.export.registry import get
from repcurate.frameworks.registry import REGISTRY as FRAMEWORKS
from repcurate.io.atomic import json_bytes, write_directory
from repcurate.io.outputs import ensure_writable_target, refuse_overlap
from repcurate.repset import load
from repcurate.version import __version__

log = logging.getLogger("repcurate")

#: Written beside every export: what it holds and where it came from (also marks the folder as repcurate's own).
EXPORT_RECORD = "export.json"
USAGE_FILE = "USAGE.txt"


@dataclass
class ExportResult:
    """What ``export_set`` wrote: the folder, the format, the files and the record in ``export.json``."""

    out: Path
    format: str
    files: list[str]
    record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "format": self.format, "files": self.files, **self.record}


def stored_layout(manifest: dict[str, Any], sample_shape: tuple[int, ...]) -> str | None:
    """The layout of an image set's samples: its model's framework takes channels-last or channels-first input
    (None for samples that are not ``(C, H, W)`` / ``(H, W, C)`` or a framework this repcurate does not know)."""
    model = manifest.get("model")
    framework = FRAMEWORKS.get(model.get("framework", "")) if isinstance(model, dict) else None
    if len(sample_shape) != 3 or framework is None:
        return None
    return "nhwc" if framework.channels_last else "nchw"


def _to_layout(samples: np.ndarray, stored: str, target: str) -> np.ndarray:
    if stored == target:
        return samples
    axes = (0, 2, 3, 1) if target == "nhwc" else (0, 3, 1, 2)
    return np.ascontiguousarray(samples.transpose(axes))


def _fits(dims: tuple[int | None, ...], shape: tuple[int, ...]) -> bool:
    return len(dims) == len(shape) + 1 and all(d is None or d <= 0 or d == s for d, s in zip(dims[1:], shape))


def _choose_input(inputs: tuple[ModelInput, ...], input_name: str | None, onnx_model: Path | None) -> ModelInput | None:
    if not inputs:
        return None
    names = [i.name for i in inputs]
    if input_name is not None:
        if input_name not in names:
            raise UsageError(f"--input-name {input_name!r} is not an input of {onnx_model} (its inputs: {', '.join(names)}); "
                             "fix: pass one of those")
        return inputs[names.index(input_name)]
    if len(inputs) > 1:
        raise UsageError(f"{onnx_model}: has {len(inputs)} inputs ({', '.join(names)}) and a set feeds one; "
                         "fix: name the one the set feeds with --input-name")
    return inputs[0]


def _resolve_layout(exporter: Exporter, requested: str | None, stored: str | None, model_input: ModelInput | None,
                    sample_shape: tuple[int, ...]) -> str | None:
    if requested is not None and requested not in LAYOUTS:
        raise UsageError(f"--layout {requested!r}: use one of {', '.join(LAYOUTS)}")
    if stored is None:
        if requested is not None:
            raise UsageError(f"--layout needs image samples of a known layout, and this set's samples are {sample_shape}; "
                             "fix: drop --layout (the samples are written as stored)")
        return None
    target = requested
    if target is None and model_input is not None:
        other = "nhwc" if stored == "nchw" else "nchw"
        first, second, third = sample_shape
        transposed = (second, third, first) if other == "nhwc" else (third, first, second)
        if _fits(model_input.dims, sample_shape):
            target = stored
        elif _fits(model_input.dims, transposed):
            target = other
    target = target or exporter.default_layout or stored
    if target not in exporter.layouts:
        raise UsageError(f"--to {exporter.name} holds {' or '.join(exporter.layouts)} samples; fix: drop --layout {target}")
    return target


def _plan(exporter: Exporter, directory: Path, out: Path, *, onnx_model: Path | None, input_name: str | None,
          layout: str | None) -> tuple[ExportPlan, dict[str, Any]]:
    repset = load(directory)  # manifest and tensors verified: a tampered set is refused here (exit 3)
    tensors = np.asarray(repset.tensors)
    if tensors.dtype != np.float32:
        tensors = tensors.astype(np.float32)
    sample_shape = tuple(int(d) for d in tensors.shape[1:])
    inputs = onnx_inputs(onnx_model) if onnx_model is not None else ()
    model_input = _choose_input(inputs, input_name, onnx_model)
    stored = stored_layout(repset.manifest, sample_shape)
    target = _resolve_layout(exporter, layout, stored, model_input, sample_shape)
    samples = _to_layout(tensors, stored, target) if stored is not None and target is not None else tensors
    if model_input is not None:
        if model_input.elem_type != "float32":
            raise InputError(f"{onnx_model}: input {model_input.name!r} takes {model_input.elem_type}, and the set holds "
                             "float32 samples; fix: export the model with a float32 input")
        if not _fits(model_input.dims, tuple(samples.shape[1:])):
            dims = tuple("?" if d is None else d for d in model_input.dims)
            raise InputError(f"{onnx_model}: input {model_input.name!r} takes {dims}, and the set's samples are "
                             f"{tuple(samples.shape[1:])} ({target or 'as stored'}); fix: pass the model the set was built "
                             "for (or --layout)")
    plan = ExportPlan(samples=samples, layout=target, input_name=model_input.name if model_input else input_name,
                      model_inputs=inputs, onnx_model=onnx_model, out=out)
    source = {"repset": str(directory), "calibration_sha256": repset.manifest.get("calibration", {}).get("sha256"),
              "stored_layout": stored}
    return plan, source


def export_set(repset: str | Path, to: str, out: str | Path, *, onnx_model: str | Path | None = None,
               input_name: str | None = None, layout: str | None = None, overwrite: bool = False) -> ExportResult:
    """Write the set in ``repset`` (a ``repcurate build`` output, verified on load) as format ``to`` into the folder
    ``out``, atomically, beside ``export.json`` (what it holds) and ``USAGE.txt`` (the command that reads it).

    ``onnx_model``: the model the set will calibrate; its input name keys the data and its input shape picks the
    layout (``layout`` overrides: ``nchw`` or ``nhwc``). Same set and options ⇒ byte-identical files. Refused before
    any work (exit 2): an ``out`` that is or holds an input, or a folder ``--overwrite`` may not replace."""
    exporter = get(to)
    directory, target = Path(repset), Path(out)
    model_path = Path(onnx_model) if onnx_model is not None else None
    if model_path is not None and not exporter.reads_onnx_model:
        raise UsageError(f"--to {exporter.name} does not read an ONNX model; fix: drop --onnx-model")
    refuse_overlap(target, [("ONNX model", model_path), ("set", directory), *set_footprint(directory).inputs("set")],
                   option="--out")
    ensure_writable_target(target, overwrite=overwrite, keep_sets=True)
    plan, source = _plan(exporter, directory, target, onnx_model=model_path, input_name=input_name, layout=layout)
    exporter.check(plan)
    files: dict[str, FileContent] = dict(exporter.files(plan))
    names = sorted([*files, USAGE_FILE, EXPORT_RECORD])
    record = {"format": exporter.name, "files": names, "input_name": plan.input_name, "layout": plan.layout,
              "shape": list(plan.samples.shape), "dtype": str(plan.samples.dtype),
              "onnx_model": str(model_path) if model_path is not None else None, "source": source,
              "repcurate_version": __version__}
    files[USAGE_FILE] = exporter.usage(plan).encode("utf-8")
    files[EXPORT_RECORD] = json_bytes(record)
    write_directory(target, files, overwrite=overwrite, expected_bytes=plan.samples.nbytes)
    log.debug("wrote %s (%s: %s)", target, exporter.name, ", ".join(names))
    return ExportResult(out=target, format=exporter.name, files=names, record=record)
