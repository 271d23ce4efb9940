"""MCT PTQ of Keras models: ``keras_post_training_quantization`` and the ``.keras`` exporter."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from repcurate.quantize.mct_adapter import DataGen, core_config, run_mct


class KerasPTQ:
    """Keras (TensorFlow 2.15) models through ``mct.ptq.keras_post_training_quantization``."""

    framework = "keras"
    export_suffix = ".keras"

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        return model, []

    def quantize(self, model: Any, data_gen: DataGen, *, bias_correction: bool, weights_bits: int,
                 tpc: Any) -> tuple[Any, float]:
        config = core_config(bias_correction=bias_correction, weights_bits=weights_bits, kernels=self.kernels(model))
        return self.run(model, data_gen, config, tpc)

    def kernels(self, model: Any) -> list[tuple[type, str]]:
        from tensorflow.keras import layers

        present = {type(layer) for layer in model.layers}  # MCT refuses a filter that matches no layer
        return [(layer, attr) for layer, attr in ((layers.Conv2D, "kernel"), (layers.Dense, "kernel"),
                                                  (layers.Conv2DTranspose, "kernel"),
                                                  (layers.DepthwiseConv2D, "depthwise_kernel"))
                if layer in present]

    def kernel_weights(self, model: Any) -> int:
        kernels = self.kernels(model)
        return int(sum(int(np.prod(getattr(layer, attr).shape)) for layer in model.layers
                       for kind, attr in kernels if type(layer) is kind))

    def run(self, model: Any, data_gen: DataGen, core: Any, tpc: Any, *, weights_memory: float | None = None,
            gptq_epochs: int | None = None) -> tuple[Any, float]:
        import model_compression_toolkit as mct

        return run_mct(mct.ptq.keras_post_training_quantization, mct.gptq.keras_gradient_post_training_quantization,
                       mct.gptq.get_keras_gptq_config, model, data_gen, core, tpc, weights_memory=weights_memory,
                       gptq_epochs=gptq_epochs)

    def outputs(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        outputs = [np.asarray(model(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32), training=False))
                   for start in range(0, len(x), batch_size)]
        return np.concatenate(outputs).astype(np.float64)

    def require_exporter(self) -> None:
        """MCT's Keras exporter needs nothing beyond TensorFlow."""

    def export(self, q_model: Any, path: Path, data_gen: DataGen) -> None:
        import model_compression_toolkit as mct

        mct.exporter.keras_export_model(model=q_model, save_model_path=str(path))
