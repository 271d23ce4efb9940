"""Keras (TensorFlow 2): loading ``.keras`` / ``.h5`` files, fingerprint, feature capture, layer outputs."""
from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import InputError, UsageError, user_code_failed
from repcurate.frameworks.base import Visit, batches_of, concatenate_outputs, layer_names, output_batch_size, pool_features
from repcurate.frameworks.device import concrete_device, import_tensorflow, restrict_tensorflow, tf_device_name
from repcurate.frameworks.keras_graph import as_list, visit_layers

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
log = logging.getLogger("repcurate")


def keras_model_fingerprint(model: Any, layer: str) -> str:
    """Hash of layer names and classes, every weight array and the feature layer."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"keras|{layer}|".encode())
    for keras_layer in model.layers:
        digest.update(f"{keras_layer.name}:{type(keras_layer).__name__}|".encode())
    for weight in model.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def is_keras_model(obj: Any) -> bool:
    """True for a Keras (TensorFlow 2) model object, without importing TensorFlow."""
    module = type(obj).__module__
    return module.startswith(("keras", "tensorflow", "tf_keras")) and hasattr(obj, "layers") and hasattr(obj, "predict")


class KerasCapture:
    """One layer's (pooled) features of a Keras model in inference mode: the last Dense layer's input by
    default, or a named layer's output. Keras models take channels-last input."""

    def __init__(self, model: Any, *, layer: str | Sequence[str] | None, spec: str, device: str = "cpu") -> None:
        tf = import_tensorflow()
        restrict_tensorflow(device)
        self._tf_device = None if device == "auto" else tf_device_name(concrete_device(device))
        self.model_spec = spec
        if not layer_names(layer):
            dense = [lyr for lyr in model.layers if isinstance(lyr, tf.keras.layers.Dense)]
            if not dense:
                raise UsageError(f"{spec} has no Dense classifier head (the graph rule for headless models is PyTorch-only); "
                                 "fix: pass --layer NAME (several: comma-separated; see model.summary())")
            target = dense[-1].input
            self.layer = f"{dense[-1].name}:input"
        else:
            names = [lyr.name for lyr in model.layers]
            wanted = layer_names(layer)
            for name in wanted:
                if name not in names:
                    raise UsageError(f"layer {name!r} not found in {spec}; layers: {', '.join(names[-8:])} …")
            target = [model.get_layer(name).output for name in wanted]
            self.layer = ",".join(wanted)
        self._features = tf.keras.Model(inputs=model.inputs, outputs=target)
        self.fingerprint = keras_model_fingerprint(model, self.layer)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()
        try:
            with tf.device(self._tf_device) if self._tf_device else contextlib.nullcontext():
                features = self._features(np.ascontiguousarray(batch, dtype=np.float32), training=False)
        except BaseException as exc:  # a user model's call raising SystemExit too
            if not user_code_failed(exc):
                raise
            raise InputError(
                f"{self.model_spec} failed on a batch of shape {batch.shape}: {type(exc).__name__}: {exc}; "
                "fix: make --preprocess return the model's channels-last input"
            ) from exc
        pooled = [pool_features(np.asarray(f), channels_last=True) for f in as_list(features)]
        return pooled[0] if len(pooled) == 1 else np.ascontiguousarray(np.concatenate(pooled, axis=1))


class KerasFramework:
    """Keras (TensorFlow 2.15) models: ``.keras`` / ``.h5`` files or objects from a factory."""

    name = "keras"
    channels_last = True

    def loads(self, spec: str) -> bool:
        return spec.lower().endswith(KERAS_SUFFIXES)

    def load(self, spec: str) -> Any:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"{path}: model file not found; fix: pass an existing .keras or .h5 file")
        tf = import_tensorflow()
        try:
            return tf.keras.models.load_model(path, compile=False)
        except Exception as exc:
            raise InputError(f"{path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from exc

    def owns(self, model: Any) -> bool:
        return is_keras_model(model)

    def fingerprint(self, model: Any, layer: str) -> str:
        return keras_model_fingerprint(model, layer)

    def capture(self, model: Any, *, layer: str | Sequence[str] | None, spec: str,
                device: str = "cpu") -> KerasCapture:
        return KerasCapture(model, layer=layer, spec=spec, device=device)

    def place(self, model: Any, device: str) -> Any:
        """TensorFlow restricted to ``device`` (:func:`restrict_tensorflow`); the model object is unchanged."""
        restrict_tensorflow(device)
        return model

    def visit_layer_outputs(self, model: Any, batches: Iterable[np.ndarray], visit: Visit) -> None:
        visit_layers(model, batches, visit)

    def outputs(self, model: Any, x: np.ndarray, batch_size: int | None = None) -> list[np.ndarray]:
        per_batch = [[np.asarray(v) for v in as_list(model(batch, training=False))]
                     for batch in batches_of(x, batch_size or output_batch_size(x))]
        return concatenate_outputs(per_batch)

    def kernel_types(self, model: Any) -> list[tuple[type, str]]:
        from tensorflow.keras import layers

        present = {type(layer) for layer in model.layers}  # MCT refuses a filter that matches no layer
        return [(layer, attr) for layer, attr in ((layers.Conv2D, "kernel"), (layers.Dense, "kernel"),
                                                  (layers.Conv2DTranspose, "kernel"),
                                                  (layers.DepthwiseConv2D, "depthwise_kernel"))
                if layer in present]

    def kernel_weights(self, model: Any) -> int:
        kernels = self.kernel_types(model)
        return int(sum(int(np.prod(getattr(layer, attr).shape)) for layer in model.layers
                       for kind, attr in kernels if type(layer) is kind))

    @property
    def mct(self) -> Any:
        from repcurate.frameworks.keras_mct import KerasMCT

        return KerasMCT()
