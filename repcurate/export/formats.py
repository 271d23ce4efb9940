"""The export formats: the files a toolchain's own command-line tool (or loader) reads.

- ``npz``: one float32 array keyed by the model's input name — TensorRT Model Optimizer's ONNX PTQ reads it
  (``--calibration_data_path``), and ``np.load`` anywhere else.
- ``modelopt``: the same ``.npz``, checked against the ONNX model the way ModelOpt's ``CalibrationDataProvider``
  checks it (every model input present, float32, the sample count a multiple of a fixed batch size).
- ``tflite``: a channels-last float32 ``.npy`` for ``TFLiteConverter.representative_dataset`` (TFLite's
  converter has no command-line flag for calibration data: ``USAGE.txt`` holds the two lines that feed it).

ONNX Runtime's ``quantize_static`` and OpenVINO NNCF's ``quantize`` read no calibration file (they take a Python
reader / ``nncf.Dataset``): use ``RepresentativeSet.ort_reader()`` / ``nncf_dataset()``, or build one from the
``npz`` file. No format is made up for them.
"""
from __future__ import annotations

from shlex import quote

from repcurate.errors import InputError, UsageError
from repcurate.export.base import ExportPlan, FileContent, npy_writer
from repcurate.io.atomic import write_npz

NPZ_FILE = "calibration_data.npz"
NPY_FILE = "representative_data.npy"


def _need_input_name(plan: ExportPlan, fmt: str) -> str:
    if not plan.input_name:
        raise UsageError(f"--to {fmt} keys the samples by the model's input name; fix: pass --onnx-model model.onnx "
                         "(the name is read from it) or --input-name NAME")
    return plan.input_name


def _npz_files(plan: ExportPlan, fmt: str) -> dict[str, FileContent]:
    name = _need_input_name(plan, fmt)
    samples = plan.samples
    return {NPZ_FILE: lambda path: write_npz(path, {name: samples})}


class NpzExporter:
    """One float32 array keyed by the model's input name, samples stacked on axis 0."""

    name = "npz"
    summary = f"{NPZ_FILE}: one float32 array keyed by the model's input name (TensorRT ModelOpt, np.load)"
    default_layout: str | None = None
    layouts = ("nchw", "nhwc")
    reads_onnx_model = True

    def check(self, plan: ExportPlan) -> None:
        _need_input_name(plan, self.name)

    def files(self, plan: ExportPlan) -> dict[str, FileContent]:
        return _npz_files(plan, self.name)

    def usage(self, plan: ExportPlan) -> str:
        path = plan.out / NPZ_FILE
        return (f"{NPZ_FILE}: {plan.samples.shape[0]} samples of shape {tuple(plan.samples.shape[1:])} (float32, "
                f"{plan.layout or 'as stored'}), key {plan.input_name!r}.\n\n"
                f"Python:\n    import numpy as np\n    samples = np.load({str(path)!r})[{plan.input_name!r}]\n\n"
                f"TensorRT Model Optimizer (ONNX PTQ):\n    python -m modelopt.onnx.quantization --onnx_path "
                f"{quote(str(plan.onnx_model or 'model.onnx'))} --quantize_mode int8 --calibration_data_path {quote(str(path))}\n")


class ModelOptExporter:
    """The ``.npz`` ModelOpt's ``python -m modelopt.onnx.quantization --calibration_data_path`` loads: ``np.load``
    without pickles, a dict of model input name → array, the array split into ``N / batch`` calibration steps."""

    name = "modelopt"
    summary = f"{NPZ_FILE} checked against --onnx-model for `python -m modelopt.onnx.quantization` (TensorRT ModelOpt)"
    default_layout: str | None = None
    layouts = ("nchw", "nhwc")
    reads_onnx_model = True

    def check(self, plan: ExportPlan) -> None:
        if plan.onnx_model is None:
            raise UsageError("--to modelopt checks the file against the model ModelOpt will quantize; "
                             "fix: pass --onnx-model model.onnx")
        if len(plan.model_inputs) > 1:
            names = ", ".join(i.name for i in plan.model_inputs)
            raise UsageError(f"{plan.onnx_model}: ModelOpt needs calibration data for every model input ({names}), "
                             "and a set holds one; fix: use --to npz --input-name NAME and add the other inputs yourself")
        [model_input] = plan.model_inputs
        batch = model_input.dims[0] if model_input.dims else None
        count = plan.samples.shape[0]
        if batch is not None and batch > 0 and count % batch:
            raise InputError(f"{plan.onnx_model}: input {model_input.name!r} has a fixed batch of {batch}, and ModelOpt "
                             f"splits the {count} samples into {count // batch or 1} uneven steps; fix: export the model "
                             "with a dynamic batch dimension or a batch size that divides the set size")

    def files(self, plan: ExportPlan) -> dict[str, FileContent]:
        return _npz_files(plan, self.name)

    def usage(self, plan: ExportPlan) -> str:
        return (f"{NPZ_FILE}: {plan.samples.shape[0]} samples of shape {tuple(plan.samples.shape[1:])} (float32, "
                f"{plan.layout or 'as stored'}), key {plan.input_name!r} (the only input of {plan.onnx_model}).\n\n"
                f"python -m modelopt.onnx.quantization --onnx_path {quote(str(plan.onnx_model))} --quantize_mode int8 "
                f"--calibration_data_path {quote(str(plan.out / NPZ_FILE))}\n")


class TFLiteExporter:
    """Channels-last float32 samples in one ``.npy`` for ``TFLiteConverter.representative_dataset``."""

    name = "tflite"
    summary = f"{NPY_FILE}: channels-last float32 samples for TFLiteConverter.representative_dataset"
    default_layout: str | None = "nhwc"
    layouts = ("nhwc",)
    reads_onnx_model = False

    def check(self, plan: ExportPlan) -> None:
        pass

    def files(self, plan: ExportPlan) -> dict[str, FileContent]:
        return {NPY_FILE: npy_writer(plan.samples)}

    def usage(self, plan: ExportPlan) -> str:
        return (f"{NPY_FILE}: {plan.samples.shape[0]} samples of shape {tuple(plan.samples.shape[1:])} (float32, "
                f"{plan.layout or 'as stored'}).\n\n"
                "TFLite full-integer conversion (the converter takes calibration data only from Python):\n"
                "    import numpy as np, tensorflow as tf\n"
                f"    samples = np.load({str(plan.out / NPY_FILE)!r})\n"
                "    converter = tf.lite.TFLiteConverter.from_keras_model(model)  # or from_saved_model(...)\n"
                "    converter.optimizations = [tf.lite.Optimize.DEFAULT]\n"
                "    converter.representative_dataset = lambda: ([x[None]] for x in samples)\n"
                "    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]\n")
