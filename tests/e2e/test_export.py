"""`repcurate export` writes files that each toolchain's own API consumes: the npz feeds ONNX Runtime's
quantize_static (through a reader built from the file) and OpenVINO NNCF (a Dataset built from the file), the
modelopt npz passes TensorRT ModelOpt's documented reader contract and calibrates through it, the TFLite .npy
calibrates TFLite's int8 converter; each quantized model runs and is scored on held-out digits. Bad input gets one
line and the documented exit code."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import repcurate
from tests.cli_asserts import assert_one_line_error
from tests.e2e.test_toolchains import eval_arrays
from tests.unit.export.conftest import save_digit_set, write_onnx

MARGIN = 0.05  # quantized top-1 within 5 points of float, as in test_toolchains.py


def export(cli, *args: str) -> dict:
    done = cli("export", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def onnx_top1(model: Path, x: np.ndarray, labels: np.ndarray) -> float:
    import onnxruntime as ort

    return float((ort.InferenceSession(str(model)).run(None, {"pixels": x})[0].argmax(1) == labels).mean())


class NpzReader:
    """An ONNX Runtime CalibrationDataReader over the exported file alone: one sample per step."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as archive:
            self.steps = [{key: archive[key][i:i + 1] for key in archive.files} for i in range(len(archive[archive.files[0]]))]
        self.position = 0

    def get_next(self):
        self.position += 1
        return self.steps[self.position - 1] if self.position <= len(self.steps) else None


def test_npz_calibrates_onnxruntime_and_nncf(cli, torch_project, digits_onnx, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    work, _, preprocess = torch_project
    record = export(cli, "--repset", str(work / "repset"), "--to", "npz", "--onnx-model", str(digits_onnx),
                    "--out", str(tmp_path / "npz"))
    assert record["input_name"] == "pixels" and record["layout"] == "nchw" and record["shape"][0] == 64
    npz = tmp_path / "npz" / "calibration_data.npz"

    reader = type("Reader", (NpzReader, CalibrationDataReader), {})(npz)
    quant = tmp_path / "digits.int8.onnx"
    quantize_static(str(digits_onnx), str(quant), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    assert reader.position > 64  # all 64 samples fed, then the end
    x, labels = eval_arrays(work / "eval", preprocess)
    float_top1, int8_top1 = onnx_top1(digits_onnx, x, labels), onnx_top1(quant, x, labels)
    assert float_top1 > 0.7 and int8_top1 >= float_top1 - MARGIN, (int8_top1, float_top1)

    nncf = pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")
    with np.load(npz, allow_pickle=False) as archive:
        samples = archive["pixels"]
    core = ov.Core()
    quantized = nncf.quantize(core.read_model(str(digits_onnx)), nncf.Dataset([s[None] for s in samples]),
                              subset_size=len(samples))
    assert "FakeQuantize" in {op.get_type_name() for op in quantized.get_ops()}
    ov_top1 = float((core.compile_model(quantized, "CPU")(x)[0].argmax(1) == labels).mean())
    assert ov_top1 >= float_top1 - MARGIN, (ov_top1, float_top1)


def modelopt_reads(npz: Path, onnx_model: Path) -> list[dict[str, np.ndarray]]:
    """TensorRT ModelOpt 0.47's reader, per its source (nvidia-modelopt is not installable here: CUDA wheels):
    ``modelopt/onnx/quantization/__main__.py`` loads ``np.load(path, allow_pickle=False)`` and, for ``.npz``, makes
    ``{key: data[key] for key in data.files}``; ``calib_utils.CalibrationDataProvider`` then asserts the dict has one
    entry per model input, each input's name among its keys, and splits every array into ``N / batch`` steps
    (``np.array_split``, batch = the input's first dim, unknown dims taken as 1) that it feeds ONNX Runtime."""
    import onnx

    data = np.load(str(npz), allow_pickle=False)
    calibration = {key: data[key] for key in data.files}
    graph = onnx.load(str(onnx_model)).graph
    names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    assert len(names) == len(calibration) and all(name in calibration for name in names)
    batches = {i.name: (i.type.tensor_type.shape.dim[0].dim_value or 1) for i in graph.input if i.name in names}
    steps = int(calibration[names[0]].shape[0] / batches[names[0]])
    parts = {name: np.array_split(calibration[name], steps, axis=0) for name in names}
    return [{name: parts[name][k] for name in names} for k in range(steps)]


def test_modelopt_npz_meets_modelopt_reader_contract_and_calibrates(cli, torch_project, digits_onnx, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    work, _, preprocess = torch_project
    record = export(cli, "--repset", str(work / "repset"), "--to", "modelopt", "--onnx-model", str(digits_onnx),
                    "--out", str(tmp_path / "mo"))
    npz = tmp_path / "mo" / "calibration_data.npz"
    steps = modelopt_reads(npz, digits_onnx)
    sample_shape = (1, *repcurate.load(work / "repset").tensors.shape[1:])
    assert record["shape"] == [64, *sample_shape[1:]] and len(steps) == 64
    assert all(step["pixels"].shape == sample_shape and step["pixels"].dtype == np.float32 for step in steps)
    usage = (tmp_path / "mo" / "USAGE.txt").read_text()
    assert f"python -m modelopt.onnx.quantization --onnx_path {digits_onnx}" in usage and f"--calibration_data_path {npz}" in usage

    class Steps(CalibrationDataReader):  # what ModelOpt hands ORT's calibrator
        def __init__(self) -> None:
            self.items = iter(steps)

        def get_next(self):
            return next(self.items, None)

    quant = tmp_path / "digits.modelopt-steps.int8.onnx"
    quantize_static(str(digits_onnx), str(quant), Steps(), quant_format=QuantFormat.QDQ)
    x, labels = eval_arrays(work / "eval", preprocess)
    float_top1, int8_top1 = onnx_top1(digits_onnx, x, labels), onnx_top1(quant, x, labels)
    assert int8_top1 >= float_top1 - MARGIN, (int8_top1, float_top1)


def test_tflite_npy_calibrates_the_int8_converter(cli, keras_project, tmp_path) -> None:
    tf = pytest.importorskip("tensorflow")

    work, model_path, preprocess = keras_project
    record = export(cli, "--repset", str(work / "repset"), "--to", "tflite", "--out", str(tmp_path / "tfl"))
    assert record["layout"] == "nhwc"
    samples = np.load(tmp_path / "tfl" / "representative_data.npy", allow_pickle=False)
    model = tf.keras.models.load_model(model_path)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    given, produced = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x, labels = eval_arrays(work / "eval", preprocess)
    predictions = []
    for sample in x:
        interpreter.set_tensor(given["index"], sample[None])
        interpreter.invoke()
        predictions.append(int(interpreter.get_tensor(produced["index"]).argmax()))
    float_top1 = float((model.predict(x, verbose=0).argmax(1) == labels).mean())
    int8_top1 = float((np.array(predictions) == labels).mean())
    assert int8_top1 >= float_top1 - MARGIN, (int8_top1, float_top1)


def test_bad_input_gets_one_line_and_its_exit_code(cli, tmp_path) -> None:
    pytest.importorskip("onnx")
    save_digit_set(tmp_path / "repset")
    two = write_onnx(tmp_path / "two.onnx", {"pixels": ["n", 3, 8, 6], "mask": ["n", 3, 8, 6]})
    one = write_onnx(tmp_path / "one.onnx", {"pixels": ["n", 3, 8, 6]})
    before = sorted(p.name for p in tmp_path.iterdir())

    missing = cli("export", "--repset", str(tmp_path / "nope"), "--to", "npz", "--onnx-model", str(one), "--out", str(tmp_path / "o"))
    assert_one_line_error(missing, 3, str(tmp_path / "nope"), "not found", "fix:")
    several = cli("export", "--repset", str(tmp_path / "repset"), "--to", "npz", "--onnx-model", str(two), "--out", str(tmp_path / "o"))
    assert_one_line_error(several, 2, "2 inputs (pixels, mask)", "--input-name")
    over_set = cli("export", "--repset", str(tmp_path / "repset"), "--to", "npz", "--onnx-model", str(one),
                   "--out", str(tmp_path / "repset"))
    assert_one_line_error(over_set, 2, "never writes over its inputs")
    over_model = cli("export", "--repset", str(tmp_path / "repset"), "--to", "npz", "--onnx-model", str(one), "--out", str(one))
    assert_one_line_error(over_model, 2, "is the ONNX model")
    unknown = cli("export", "--repset", str(tmp_path / "repset"), "--to", "yolo", "--out", str(tmp_path / "o"))
    assert unknown.returncode == 2 and "invalid choice: 'yolo'" in unknown.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing left behind
