"""The doctor's view of a Keras model: float activation statistics per layer, concatenations, and the
layers MCT quantized (Keras layer names are MCT's node names)."""
from __future__ import annotations

from typing import Any

import numpy as np

from repcurate.doctor.probe import NodeStats, StatsAccumulator


def layer_kind(layer: Any) -> str:
    """The activation function's name for activation-carrying layers (``Activation('swish')`` → swish,
    ``Conv2D(activation='gelu')`` → gelu), else the layer class name."""
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name and name != "linear":
        return name
    return type(layer).__name__


def keras_activation_stats(model: Any, tensors: np.ndarray, batch_size: int = 32) -> dict[str, NodeStats]:
    """Statistics of every layer output of ``model`` over ``tensors`` (in layer order)."""
    import tensorflow as tf

    layers = [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    accumulators = {layer.name: StatsAccumulator() for layer in layers}
    for start in range(0, len(tensors), batch_size):
        outputs = probe(np.ascontiguousarray(tensors[start:start + batch_size], dtype=np.float32), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for layer, output in zip(layers, outputs):
            values = np.asarray(output)
            if values.size and np.issubdtype(values.dtype, np.floating):
                accumulators[layer.name].add(values)
    kinds = {layer.name: layer_kind(layer) for layer in layers}
    return {name: acc.stats(name, kinds[name]) for name, acc in accumulators.items() if acc.count}


def _source_layer(tensor: Any) -> str:
    return tensor._keras_history.layer.name  # noqa: SLF001 - Keras 2's public-in-practice graph link


def keras_concatenations(model: Any) -> list[tuple[str, list[str]]]:
    """Every ``Concatenate`` layer and the names of the layers it concatenates."""
    import tensorflow as tf

    found = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Concatenate):
            found.append((layer.name, [_source_layer(t) for t in tf.nest.flatten(layer.input)]))
    return found


def keras_activation_nodes(q_model: Any) -> list[str]:
    """Names of the layers whose outputs MCT quantized: the inputs of its activation holder layers."""
    names = []
    for layer in q_model.layers:
        if type(layer).__name__ == "KerasActivationQuantizationHolder":
            source = layer.input._keras_history.layer  # noqa: SLF001
            inner = getattr(source, "layer", source)  # a quantization wrapper carries the original layer
            names.append(inner.name)
    return names


def keras_kinds(model: Any) -> dict[str, str]:
    """Layer name → kind (see :func:`layer_kind`)."""
    return {layer.name: layer_kind(layer) for layer in model.layers}
