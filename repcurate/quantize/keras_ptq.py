"""MCT PTQ of Keras models: ``keras_post_training_quantization`` and the ``.keras`` exporter."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.quantize.mct_adapter import DataGen, core_config


class KerasPTQ:
    """Keras (TensorFlow 2.15) models through ``mct.ptq.keras_post_training_quantization``."""

    framework = "keras"
    export_suffix = ".keras"

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        return model, []

    def quantize(self, model: Any, data_gen: DataGen, *, bias_correction: bool, weights_bits: int,
                 tpc: Any) -> tuple[Any, float]:
        import model_compression_toolkit as mct
        from tensorflow.keras import layers

        present = {type(layer) for layer in model.layers}  # MCT refuses a filter that matches no layer
        kernels = [(layer, attr) for layer, attr in ((layers.Conv2D, "kernel"), (layers.Dense, "kernel"),
                                                     (layers.Conv2DTranspose, "kernel"),
                                                     (layers.DepthwiseConv2D, "depthwise_kernel"))
                   if layer in present]
        config = core_config(bias_correction=bias_correction, weights_bits=weights_bits, kernels=kernels)
        started = time.perf_counter()
        q_model, _info = mct.ptq.keras_post_training_quantization(
            model, data_gen, core_config=config, target_platform_capabilities=tpc)
        return q_model, time.perf_counter() - started

    def outputs(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        outputs = [np.asarray(model(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32), training=False))
                   for start in range(0, len(x), batch_size)]
        return np.concatenate(outputs).astype(np.float64)

    def require_exporter(self) -> None:
        """MCT's Keras exporter needs nothing beyond TensorFlow."""

    def export(self, q_model: Any, path: Path, data_gen: DataGen) -> None:
        import model_compression_toolkit as mct

        mct.exporter.keras_export_model(model=q_model, save_model_path=str(path))
