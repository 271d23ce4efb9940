"""The ONNX Runtime quantizer beyond the contract: real QDQ graphs (8- and 4-bit weights), output order of
multi-output models, the exported file, a quiet stdout and deterministic results. Real torch / ORT / onnx."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.errors import UsageError
from repcurate.frameworks import FRAMEWORKS, load_model
from repcurate.quantize.registry import get
from repcurate.repset import mct_data_gen
from tests.unit.frameworks.framework_examples import EXAMPLES, digits_batch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def torch_examples(tmp_path_factory):
    return EXAMPLES["torch"](tmp_path_factory.mktemp("ort-quantizer"))


def _quantize(spec, bits=8, calibration="minmax"):
    quantizer, framework = get("onnxruntime"), FRAMEWORKS["torch"]
    model, _ = quantizer.prepare(framework, load_model(spec).model)
    x = digits_batch(framework.channels_last, n=64)
    q_model, _ = quantizer.quantize(framework, model, mct_data_gen(x, 16),
                                    quantizer.settings(weights_bits=bits, calibration=calibration))
    return quantizer, framework, model, q_model, x


@pytest.mark.parametrize(("bits", "weight_type", "domain"), [(8, onnx.TensorProto.INT8, ""),
                                                              (4, onnx.TensorProto.INT4, "com.microsoft")])
def test_weights_are_stored_at_the_requested_bits_in_a_qdq_graph(torch_examples, tmp_path, bits, weight_type, domain):
    quantizer, framework, _model, q_model, x = _quantize(torch_examples.single, bits)
    path = tmp_path / "q.onnx"
    quantizer.export(framework, q_model, path, None)
    graph = onnx.load(str(path)).graph
    dequantize = [n for n in graph.node if n.op_type == "DequantizeLinear"]
    assert dequantize and {n.domain for n in dequantize} == {domain}
    initializers = {i.name: i for i in graph.initializer}
    weights = [initializers[n.input[0]] for n in dequantize if n.input[0] in initializers and len(initializers[n.input[0]].dims) > 1]
    assert weights and {w.data_type for w in weights} == {weight_type}  # conv and linear kernels, per channel
    # the exported file run by a plain session gives the quantizer's own model outputs
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [expected] = framework.outputs(q_model, x[:8])
    np.testing.assert_array_equal(session.run(None, {"input": x[:8]})[0], expected.astype(np.float32))


def test_multi_output_models_keep_the_framework_output_order(torch_examples):
    _quantizer, framework, model, q_model, x = _quantize(torch_examples.named)
    float_out, quant_out = framework.outputs(model, x), framework.outputs(q_model, x)
    assert [o.shape for o in quant_out] == [o.shape for o in float_out] == [(64, 10), (64, 3)]
    for f, q in zip(float_out, quant_out):
        assert np.corrcoef(f.ravel(), q.ravel())[0, 1] > 0.99


def test_calibration_methods_give_reproducible_and_distinct_models(torch_examples, capsys):
    runs = {method: _quantize(torch_examples.single, 4, method) for method in ("minmax", "entropy", "percentile")}
    outputs = {m: r[1].outputs(r[3], r[4])[0] for m, r in runs.items()}
    # the method changes activation ranges (on this tiny model Entropy's thresholds land on MinMax's)
    assert not np.array_equal(outputs["minmax"], outputs["percentile"])
    again = _quantize(torch_examples.single, 4, "entropy")
    np.testing.assert_array_equal(again[1].outputs(again[3], again[4])[0], outputs["entropy"])
    assert capsys.readouterr().out == ""  # ORT's calibrator prints must not reach stdout (JSON reports go there)


def test_bad_settings_are_usage_errors():
    quantizer = get("onnxruntime")
    with pytest.raises(UsageError, match="weights-bits"):
        quantizer.settings(weights_bits=2)
    with pytest.raises(UsageError, match="minmax, entropy, percentile"):
        quantizer.settings(calibration="kl")
    with pytest.raises(UsageError, match="no axis 'bias_correction'"):
        quantizer.grid(quantizer.settings(), {"bias_correction": (True,)})
