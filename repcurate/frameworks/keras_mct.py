"""What MCT needs for Keras: its facade functions, the ``.keras`` exporter, the layer graph."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.frameworks.base import Preflight


class KerasMCT:
    """Keras (TensorFlow 2.15) models through ``mct.ptq.keras_post_training_quantization``."""

    export_suffix = ".keras"
    facade = "keras"

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        return model, []

    def ptq(self) -> Callable[..., Any]:
        import model_compression_toolkit as mct

        return mct.ptq.keras_post_training_quantization

    def gptq(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        import model_compression_toolkit as mct

        return mct.gptq.keras_gradient_post_training_quantization, mct.gptq.get_keras_gptq_config

    def require_exporter(self) -> None:
        """MCT's Keras exporter needs nothing beyond TensorFlow."""

    def set_device(self, device: str) -> None:
        """MCT's Keras path runs where TensorFlow places it: restrict TensorFlow to ``device``."""
        from repcurate.frameworks.device import restrict_tensorflow

        restrict_tensorflow(device)

    def export(self, q_model: Any, path: Path, data_gen: Any) -> None:
        import model_compression_toolkit as mct

        mct.exporter.keras_export_model(model=q_model, save_model_path=str(path))

    def preflight(self, model: Any, sample: np.ndarray) -> Preflight:
        """Nothing to trace: MCT reads the Keras layer graph as it is (no preflight step)."""
        from repcurate.frameworks.keras_graph import KerasGraph

        return Preflight(ok=True, graph=KerasGraph(model), name=None)

    def activation_nodes(self, q_model: Any) -> list[str]:
        """The layers whose outputs MCT quantized: the inputs of its activation holder layers (Keras layer
        names are MCT's node names)."""
        names = []
        for layer in q_model.layers:
            if type(layer).__name__ == "KerasActivationQuantizationHolder":
                source = layer.input._keras_history.layer
                inner = getattr(source, "layer", source)  # a quantization wrapper carries the original layer
                names.append(inner.name)
        return names

    def activation_bits(self, q_model: Any) -> dict[str, int]:
        bits = {}
        for layer in q_model.layers:
            if type(layer).__name__ == "KerasActivationQuantizationHolder":
                source = layer.input._keras_history.layer
                bits[getattr(source, "layer", source).name] = int(layer.activation_holder_quantizer.num_bits)
        return bits

    def xquant(self) -> Callable[..., Any] | None:
        """MCT 2.6's XQuant troubleshooting is PyTorch-only."""
        return None

    def snippet_kernels(self, weights_bits: int) -> tuple[str, list[str], str]:
        return "from tensorflow.keras import layers", ["layers.Conv2D", "layers.Dense"], "kernel"
