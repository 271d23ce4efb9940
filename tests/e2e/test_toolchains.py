"""The curated set calibrates other toolchains' own quantizers: ONNX Runtime's quantize_static (QDQ) and OpenVINO
NNCF's quantize on an ONNX export of the digits CNN, and TFLite's full-integer converter on the Keras twin; each
quantized model runs (NNCF's on OpenVINO's CPU plugin) and is scored on held-out digits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import repcurate
from repcurate.spec import load_object


def eval_arrays(folder: Path, preprocess: str) -> tuple[np.ndarray, np.ndarray]:
    """Held-out images through the model's own preprocessing, and their digit labels."""
    pre = load_object(preprocess)
    files = sorted(folder.rglob("*.png"))
    x = np.stack([pre(Image.open(f).convert("RGB")) for f in files]).astype(np.float32)
    return x, np.array([int(f.parent.name) for f in files])


def test_onnxruntime_quantize_static_with_the_set(torch_project, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    work, model_spec, preprocess = torch_project
    model = load_object(model_spec)()
    repset = repcurate.load(work / "repset")
    float_path, quant_path = tmp_path / "digits.onnx", tmp_path / "digits.int8.onnx"
    torch.onnx.export(model, torch.from_numpy(repset.tensors[:1]), str(float_path), input_names=["pixels"],
                      output_names=["logits"], dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    reader = repset.ort_reader("pixels")
    quantize_static(str(float_path), str(quant_path), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    assert reader.position == len(repset)  # every set sample was fed to ORT's calibrator
    import onnx

    ops = {node.op_type for node in onnx.load(str(quant_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops

    x, labels = eval_arrays(work / "eval", preprocess)
    float_top1 = float((ort.InferenceSession(str(float_path)).run(None, {"pixels": x})[0].argmax(1) == labels).mean())
    quant_logits = ort.InferenceSession(str(quant_path)).run(None, {"pixels": x})[0]
    quant_top1 = float((quant_logits.argmax(1) == labels).mean())
    assert float_top1 > 0.7
    assert quant_top1 >= float_top1 - 0.05, (quant_top1, float_top1)


def test_tflite_full_integer_conversion_with_the_set(keras_project) -> None:
    tf = pytest.importorskip("tensorflow")

    work, model_path, preprocess = keras_project
    model = tf.keras.models.load_model(model_path)
    repset = repcurate.load(work / "repset")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = repset.tflite_representative_dataset()  # the Keras set is channels-last
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    given, produced = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert given["dtype"] == np.int8 and produced["dtype"] == np.int8

    x, labels = eval_arrays(work / "eval", preprocess)
    scale, zero = given["quantization"]
    predictions = []
    for sample in x:
        interpreter.set_tensor(given["index"], np.clip(np.round(sample[None] / scale + zero), -128, 127).astype(np.int8))
        interpreter.invoke()
        predictions.append(int(interpreter.get_tensor(produced["index"]).argmax()))
    float_top1 = float((model.predict(x, verbose=0).argmax(1) == labels).mean())
    int8_top1 = float((np.array(predictions) == labels).mean())
    assert float_top1 > 0.7
    assert int8_top1 >= float_top1 - 0.05, (int8_top1, float_top1)


def test_nncf_quantize_with_the_set_runs_on_openvino_cpu(torch_project, digits_onnx) -> None:
    """NNCF's telemetry is off twice over here: pytest is imported (NNCF stubs it then) and the adapter sets NNCF_CI=1."""
    nncf = pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")

    work, _, preprocess = torch_project
    repset = repcurate.load(work / "repset")
    fed: list[int] = []

    def count(x: np.ndarray) -> np.ndarray:
        fed.append(len(x))
        return x

    core = ov.Core()
    float_model = core.read_model(str(digits_onnx))
    quantized = nncf.quantize(float_model, repset.nncf_dataset(transform=count), subset_size=len(repset))
    assert sum(fed) >= len(repset)  # every set sample went through NNCF's statistics collection
    assert "FakeQuantize" in {op.get_type_name() for op in quantized.get_ops()}

    x, labels = eval_arrays(work / "eval", preprocess)
    float_top1 = float((core.compile_model(float_model, "CPU")(x)[0].argmax(1) == labels).mean())
    int8_top1 = float((core.compile_model(quantized, "CPU")(x)[0].argmax(1) == labels).mean())
    assert float_top1 > 0.7
    assert int8_top1 >= float_top1 - 0.05, (int8_top1, float_top1)
