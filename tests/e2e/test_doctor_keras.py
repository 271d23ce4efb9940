"""`repcurate doctor` on Keras models (real MCT Keras path): the layer-graph steps, bias correction, the culprit
search, mixed precision and GPTQ."""
from __future__ import annotations

import pytest

import repcurate

tf = pytest.importorskip("tensorflow")


def test_keras_doctor_measures_bias_correction_and_escalation(keras_project):
    work, model, _ = keras_project
    result = repcurate.doctor(model, work / "repset", work / "eval", weights_bits=2, tolerance=0.5, run_checks=False,
                              gptq_epochs=1, budget_minutes=10, trust_set=True)
    steps = {f.step: f for f in result.findings}
    assert result.framework == "keras" and result.metric == "top1" and result.baseline is not None
    bc = steps["bias correction"]
    assert bc.experiments[0].metric is not None and dict(bc.experiments[0].settings.quantization) == {
        "weights_bias_correction": False}
    escalation = steps["escalation (mixed precision, GPTQ)"]
    assert [(e.settings.weights_memory is not None, e.settings.gptq_epochs) for e in escalation.experiments] == [
        (True, None), (False, 1)]
    assert all(e.metric is not None for e in escalation.experiments)
    for step in ("shift-negative correction", "outlier removal (z_threshold)", "unbalanced concatenation"):
        assert steps[step].status == "nothing to fix", steps[step].summary
    culprits = steps["culprit layers"]  # 2-bit weights: 16-bit activations everywhere do not recover them
    assert culprits.status == "no gain" and culprits.experiments[0].settings.activation_16bit
    layer_names = {layer.name for layer in tf.keras.models.load_model(model).layers}
    searched = culprits.experiments[0].settings.activation_16bit
    assert searched[0].startswith("input") and set(searched[1:]) <= layer_names  # the input quantizer, then layers
    assert "keras_" in result.to_dict()["recommended_config"]["python"]
    assert result.final >= result.baseline


def planted_keras_model(path):
    """A Keras CNN with a swish activation and a concatenation whose second branch is scaled ×64 (the next
    convolution divides it back, so the float function is that of the unscaled model)."""
    from tensorflow.keras import layers

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 1))
    h = layers.Conv2D(8, 3, padding="same", activation="swish", name="stem")(inputs)
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="branch_a")(h)
    b = layers.Conv2D(8, 3, padding="same", activation="relu", name="branch_b")(h)
    joined = layers.Concatenate(name="joined")([a, b])
    h = layers.Conv2D(8, 3, padding="same", activation="relu", name="mix")(joined)
    outputs = layers.Dense(10, name="logits")(layers.Flatten()(layers.AveragePooling2D(4)(h)))
    model = tf.keras.Model(inputs, outputs)
    kernel, bias = model.get_layer("branch_b").get_weights()
    model.get_layer("branch_b").set_weights([kernel * 64.0, bias * 64.0])
    mix_kernel, mix_bias = model.get_layer("mix").get_weights()
    mix_kernel[:, :, 8:, :] /= 64.0
    model.get_layer("mix").set_weights([mix_kernel, mix_bias])
    model.save(path)
    return str(path)


def test_keras_graph_steps_find_negative_activations_and_the_unbalanced_concat(keras_project, tmp_path):
    work, _, preprocess = keras_project
    model = planted_keras_model(tmp_path / "planted.keras")
    result = repcurate.doctor(model, work / "repset", work / "eval", preprocess=preprocess, run_checks=False,
                              budget_minutes=10)
    steps = {f.step: f for f in result.findings}
    snc = steps["shift-negative correction"]
    assert [layer["layer"] for layer in snc.details["layers"]] == ["stem"] and snc.details["layers"][0]["kind"] == "swish"
    assert snc.experiments and snc.experiments[0].metric is not None
    concat = steps["unbalanced concatenation"]
    [found] = concat.details["concatenations"]
    assert found["concat"] == "joined" and set(found["inputs"]) == {"branch_a", "branch_b"}
    assert found["ratio"] >= 16  # 64 × the two random branches' own range ratio
    assert concat.experiments[0].metric is not None
