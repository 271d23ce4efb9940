"""Features from a PyTorch ``nn.Module``: the classifier head's input, or any named layer."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from repcurate.data.preprocess import Preprocessor
from repcurate.embed.base import pool_features
from repcurate.errors import InputError, UsageError


class _Captured(Exception):
    """Raised from a hook to stop the forward pass once the wanted features are in hand."""


def torch_model_fingerprint(model: Any, layer: str) -> str:
    """Hash of the model class, every state-dict tensor (name, dtype, shape, bytes) and the layer."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}|{layer}|".encode())
    for name, tensor in sorted(model.state_dict().items()):
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{array.dtype}|{tuple(array.shape)}|".encode())
        digest.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype, bfloat16 too
    return digest.hexdigest()


def default_head_layer(model: Any) -> str:
    """Name of the last ``nn.Linear`` in module order: its input is the penultimate feature vector."""
    import torch.nn as nn

    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise UsageError(
            f"{type(model).__name__} has no nn.Linear classifier head to take features from; "
            "fix: pass --layer NAME (see model.named_modules())"
        )
    return linear[-1]


class TorchEmbedder:
    """Runs a torch model under ``inference_mode`` and captures one layer's features.

    With the default layer (the classifier head) the *input* of the head is captured, i.e. the
    pooled penultimate features; with ``layer=NAME`` the layer's *output*, global-average-pooled
    when it is a feature map.
    """

    framework = "torch"

    def __init__(self, model: Any, *, spec: str, preprocessor: Preprocessor, layer: str | None = None) -> None:
        import torch

        self.model = model.eval()
        self.model_spec = spec
        self.preprocessor = preprocessor
        self._capture_input = layer is None
        self.layer = layer or default_head_layer(model)
        modules = dict(model.named_modules())
        if self.layer not in modules:
            close = sorted(n for n in modules if n and self.layer.split(".")[-1] in n)[:5]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise UsageError(f"layer {self.layer!r} not found in {type(model).__name__}{hint}")
        self._module = modules[self.layer]
        self.fingerprint = torch_model_fingerprint(model, ("in:" if self._capture_input else "out:") + self.layer)
        self._channels_last = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        import torch

        captured: list[Any] = []

        def pre_hook(_module: Any, inputs: tuple[Any, ...]) -> None:
            captured.append(inputs[0])
            raise _Captured

        def post_hook(_module: Any, _inputs: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, (tuple, list)) else output)
            raise _Captured

        handle = (self._module.register_forward_pre_hook(pre_hook) if self._capture_input
                  else self._module.register_forward_hook(post_hook))
        try:
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            if self._channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                try:
                    self.model(x)
                except _Captured:
                    pass
                except Exception as exc:
                    raise InputError(
                        f"{self.model_spec} failed on a batch of shape {tuple(x.shape)}: {type(exc).__name__}: {exc}; "
                        "fix: make --preprocess return the model's input layout and size"
                    ) from exc
        finally:
            handle.remove()
        if not captured:
            raise UsageError(f"layer {self.layer!r} was not called during the forward pass; fix: pick another --layer")
        features = captured[0].detach().float().cpu().numpy()
        return pool_features(features, channels_last=False)
