"""What every registered quantizer must do, for every registered framework, on small real models and a real
calibration set (scikit-learn's digits): a non-empty settings grid whose every point quantizes a model that
runs on a batch with the float model's outputs, and an export. Real torch / TensorFlow / MCT, no mocks."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.errors import MissingDependencyError, UsageError
from repcurate.frameworks import FRAMEWORKS, load_model
from repcurate.quantize.registry import QUANTIZERS, get
from repcurate.repset import mct_data_gen
from tests.unit.frameworks.framework_examples import EXAMPLES, digits_batch

#: Quantizer × framework pairs a quantizer refuses up front (exit 2 with a fix): ONNX Runtime quantizes ONNX
#: exports of PyTorch models; a Keras model has no ONNX export here (no tf2onnx).
UNSUPPORTED = {("onnxruntime", "keras")}
#: Ultralytics checkpoints are PyTorch models behind their own loader: the quantizers see the torch path (covered
#: here by the torch example); their detector PTQ end to end is tests/e2e/test_ultralytics_cli.py's.
CASES = [(q, f) for q in sorted(QUANTIZERS) for f in sorted(FRAMEWORKS)
         if (q, f) not in UNSUPPORTED and f != "ultralytics"]


@pytest.fixture(scope="module", params=CASES, ids=[f"{q}-{f}" for q, f in CASES])
def case(request, tmp_path_factory):
    quantizer_name, framework_name = request.param
    if framework_name == "keras":
        pytest.importorskip("tensorflow")
    framework = FRAMEWORKS[framework_name]
    example = EXAMPLES[framework_name](tmp_path_factory.mktemp(f"quantize-{quantizer_name}-{framework_name}"))
    calibration = digits_batch(framework.channels_last, n=64)
    quantizer = QUANTIZERS[quantizer_name]
    float_model, _notes = quantizer.prepare(framework, load_model(example.single).model)
    return quantizer, framework, float_model, calibration


def test_registry_names_its_members():
    assert {"mct", "onnxruntime"} <= set(QUANTIZERS) and all(get(name).name == name for name in QUANTIZERS)


@pytest.mark.parametrize(("quantizer_name", "framework_name"), sorted(UNSUPPORTED))
def test_an_unsupported_framework_is_refused_with_a_fix(quantizer_name, framework_name, tmp_path):
    pytest.importorskip("tensorflow")
    framework = FRAMEWORKS[framework_name]
    model = load_model(EXAMPLES[framework_name](tmp_path).single).model
    with pytest.raises(UsageError, match=r"needs a PyTorch model.*fix: .*--quantizer mct"):
        QUANTIZERS[quantizer_name].prepare(framework, model)


def test_every_quantizer_names_its_settings_fields():
    for quantizer in QUANTIZERS.values():
        fields = quantizer.settings().to_dict()
        assert set(quantizer.base_fields) <= set(fields) and set(quantizer.grid_axes) <= set(fields)
        assert quantizer.weight_bits and 8 in quantizer.weight_bits


def test_every_grid_point_quantizes_a_model_that_runs(case):
    quantizer, framework, float_model, calibration = case
    base = quantizer.settings()
    grid = quantizer.grid(base)
    assert grid, "the settings grid an A/B explores must not be empty"
    assert all(set(quantizer.grid_axes) <= set(point.to_dict()) for point in grid)
    assert len({tuple(sorted(p.to_dict().items())) for p in grid}) == len(grid)  # distinct points
    float_out = framework.outputs(float_model, calibration)
    data_gen = mct_data_gen(calibration, 16)
    for point in grid:
        q_model, seconds = quantizer.quantize(framework, float_model, data_gen, point)
        assert seconds > 0 and point.label()
        [out] = framework.outputs(q_model, calibration[:10], batch_size=4)
        assert out.shape == (10, 10) and np.isfinite(out).all()
        agreement = float(np.mean(out.argmax(1) == float_out[0][:10].argmax(1)))
        assert agreement >= 0.5, f"{point.label()}: the quantized model should mostly agree with the float one"


def test_a_grid_over_named_axis_values_keeps_their_order(case):
    quantizer, _framework, _model, _x = case
    base = quantizer.settings()
    for axis in quantizer.grid_axes:
        values = list(quantizer.default_axes[axis])[::-1]
        assert [p.to_dict()[axis] for p in quantizer.grid(base, {axis: values})] == values


def test_exports_a_quantized_model(case, tmp_path):
    quantizer, framework, float_model, calibration = case
    try:
        quantizer.require_exporter(framework)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    data_gen = mct_data_gen(calibration, 16)
    q_model, _ = quantizer.quantize(framework, float_model, data_gen, quantizer.grid(quantizer.settings())[0])
    path = tmp_path / f"model{quantizer.export_suffix(framework)}"
    quantizer.export(framework, q_model, path, data_gen)
    assert path.is_file() and path.stat().st_size > 0
