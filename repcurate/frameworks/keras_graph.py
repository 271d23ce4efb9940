"""A Keras model's layer graph: the one layer-output probe (used by the checks' layer visits and the doctor),
layer kinds and concatenations. Keras layer names are MCT's node names."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from repcurate.frameworks.base import Visit


def layer_kind(layer: Any) -> str:
    """The activation function's name for activation-carrying layers (``Activation('swish')`` → swish,
    ``Conv2D(activation='gelu')`` → gelu), else the layer class name."""
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name and name != "linear":
        return name
    return type(layer).__name__


def as_list(values: Any) -> list[Any]:
    """A Keras call's result as a flat list: a tensor, a list/tuple, or a dict's values in its order."""
    if isinstance(values, dict):
        return [v for value in values.values() for v in as_list(value)]
    if isinstance(values, (list, tuple)):
        return [v for value in values for v in as_list(value)]
    return [values]


def _probed_layers(model: Any) -> list[Any]:
    import tensorflow as tf

    return [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]


def visit_layers(model: Any, batches: Iterable[np.ndarray], visit: Visit) -> None:
    """The one Keras layer-output probe: a functional model returning every non-input layer's output."""
    import tensorflow as tf

    layers = _probed_layers(model)
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    for batch in batches:
        values = as_list(probe(np.ascontiguousarray(batch, dtype=np.float32), training=False))
        for layer, value in zip(layers, values):
            visit(layer.name, np.asarray(value))


class KerasGraph:
    """A Keras model's layer graph as the doctor reads it (layer names are MCT's node names)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def visit(self, batches: Iterable[np.ndarray], visit: Visit) -> None:
        """Every non-empty floating-point layer output, in layer order."""
        def floating(name: str, values: np.ndarray) -> None:
            if values.size and np.issubdtype(values.dtype, np.floating):
                visit(name, values)

        visit_layers(self.model, batches, floating)

    def kinds(self) -> dict[str, str]:
        return {layer.name: layer_kind(layer) for layer in self.model.layers}

    def inputs(self) -> dict[str, list[str]]:
        import tensorflow as tf

        def sources(layer: Any) -> list[str]:
            try:
                return [t._keras_history.layer.name for t in tf.nest.flatten(layer.input)]
            except (AttributeError, ValueError):  # an input layer, or a layer used more than once
                return []

        return {layer.name: sources(layer) for layer in self.model.layers}

    def concatenations(self) -> list[tuple[str, list[str]]]:
        import tensorflow as tf

        def source(tensor: Any) -> str:
            return tensor._keras_history.layer.name

        return [(layer.name, [source(t) for t in tf.nest.flatten(layer.input)]) for layer in self.model.layers
                if isinstance(layer, tf.keras.layers.Concatenate)]
