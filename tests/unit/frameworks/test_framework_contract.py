"""What every registered framework must do, checked on small real models (cf. scikit-learn's estimator checks):
load from a spec, fingerprint stably, capture a feature layer, visit layer outputs, run a batch to a list of
arrays (single, tuple and dict outputs), list its kernel layer types, and offer MCT its glue."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.errors import UsageError
from repcurate.frameworks import FRAMEWORKS, framework_of, load_model
from repcurate.frameworks.base import Preflight
from tests.unit.frameworks.framework_examples import EXAMPLES, digits_batch

NAMES = sorted(FRAMEWORKS)


@pytest.fixture(scope="module", params=NAMES)
def member(request, tmp_path_factory):
    name = request.param
    if name == "keras":
        pytest.importorskip("tensorflow")
    framework = FRAMEWORKS[name]
    example = EXAMPLES[name](tmp_path_factory.mktemp(f"framework-{name}"))
    return framework, example, example.batch() if example.batch else digits_batch(framework.channels_last)


def test_every_registered_framework_has_an_example():
    assert set(FRAMEWORKS) == set(EXAMPLES)
    assert all(FRAMEWORKS[name].name == name for name in FRAMEWORKS)


def test_loads_its_models_from_a_spec_and_owns_them(member):
    framework, example, _x = member
    for spec in (example.single, example.pair, example.named):
        loaded = load_model(spec)
        assert loaded.framework is framework and framework_of(loaded.model) is framework
        assert framework.owns(loaded.model) and not loaded.is_default
    others = [f for f in FRAMEWORKS.values() if f is not framework]
    assert not any(f.owns(load_model(example.single).model) for f in others)


def test_fingerprint_is_stable_across_loads_and_names_the_layer(member):
    framework, example, _x = member
    first, second = load_model(example.single).model, load_model(example.single).model
    fp = framework.fingerprint(first, "head")
    assert fp == framework.fingerprint(second, "head") == framework.fingerprint(first, "head")
    assert fp != framework.fingerprint(first, "other") and len(fp) == 32
    assert framework.fingerprint(load_model(example.pair).model, "head") != fp  # another architecture


def test_captures_the_default_and_a_named_feature_layer(member):
    framework, example, x = member
    model = load_model(example.single).model
    default = framework.capture(model, layer=None, spec=example.single)
    features = default(x)
    assert features.shape == (len(x), example.default_feature_dim) and features.dtype == np.float32
    np.testing.assert_array_equal(default(x[:5]), features[:5])
    named = framework.capture(model, layer=example.named_layer, spec=example.single)
    assert named.layer == example.named_layer and named.fingerprint != default.fingerprint
    assert named(x).shape[0] == len(x)
    with pytest.raises(UsageError, match="not found"):
        framework.capture(model, layer="no_such_layer", spec=example.single)


def test_visits_every_layer_output_batch_by_batch(member):
    framework, example, x = member
    model = load_model(example.single).model
    rows: dict[str, int] = {}
    framework.visit_layer_outputs(model, (x[i:i + 7] for i in range(0, len(x), 7)),
                                  lambda name, out: rows.__setitem__(name, rows.get(name, 0) + out.shape[0]))
    repeated = example.repeated_layers or {}
    assert {name: rows[name] for name in repeated} == {name: calls * len(x) for name, calls in repeated.items()}
    rest = {count for name, count in rows.items() if name not in repeated}
    assert len(rows) >= 3 and rest == {len(x)}  # every layer saw every sample once (a reused one, once per use)
    assert example.named_layer in rows


@pytest.mark.parametrize("which, widths", [("single", [10]), ("pair", [10, 3]), ("named", [10, 3])])
def test_runs_a_batch_to_a_list_of_arrays(member, which, widths):
    framework, example, x = member
    model = load_model(getattr(example, which)).model
    outputs = framework.outputs(model, x, batch_size=10)  # uneven batches, concatenated per output
    shapes = (example.output_shapes or {}).get(which) or [(w,) for w in widths]
    assert isinstance(outputs, list) and [o.shape for o in outputs] == [(len(x), *shape) for shape in shapes]
    assert all(o.dtype == np.float64 for o in outputs)
    whole = framework.outputs(model, x)
    for a, b in zip(outputs, whole):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lists_the_kernel_layer_types_present(member):
    framework, example, _x = member
    model = load_model(example.single).model
    kernels = framework.kernel_types(model)
    assert kernels and all(isinstance(kind, type) and isinstance(attr, str) for kind, attr in kernels)
    assert len(kernels) == example.kernel_kinds  # e.g. a convolution and a dense/linear layer; absent types are not listed
    assert framework.kernel_weights(model) == example.kernel_weights


def test_offers_mct_its_glue(member):
    framework, example, x = member
    glue = framework.mct
    assert glue.export_suffix.startswith(".") and glue.facade
    prepared, notes = glue.prepare(load_model(example.single).model)
    assert isinstance(notes, list)
    np.testing.assert_allclose(framework.outputs(prepared, x)[0], framework.outputs(load_model(example.single).model, x)[0],
                               rtol=1e-5, atol=1e-6)
    result = glue.preflight(prepared, x[:4])
    assert isinstance(result, Preflight) and result.ok and result.graph is not None
    seen: set[str] = set()
    result.graph.visit([x[:4]], lambda name, out: seen.add(name))
    assert seen and seen <= set(result.graph.kinds()) and bool(result.graph.concatenations()) == example.concatenates
    inputs = result.graph.inputs()
    assert list(inputs) == list(result.graph.kinds()) and all(set(i) <= set(inputs) for i in inputs.values())
    assert all(set(sources) <= set(inputs[name]) for name, sources in result.graph.concatenations())
    assert callable(glue.ptq()) and all(callable(f) for f in glue.gptq())
    import_line, layer_types, attr = glue.snippet_kernels(4)
    assert import_line.split()[0] in ("import", "from") and layer_types and attr
