"""PyTorch: ``nn.Module`` models — loading, fingerprint, feature capture, layer outputs, kernel types."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, cast

import numpy as np

from repcurate.errors import InputError, UsageError
from repcurate.frameworks.base import Visit, batches_of, concatenate_outputs, pool_features
from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME, load_efficientnet_lite0


def model_device(model: Any) -> Any:
    """The device of ``model``'s first parameter (or buffer); CPU for a model without either."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


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


def flatten_outputs(output: Any) -> list[Any]:
    """A model's output as a flat list of tensors: a tensor, the elements of a tuple or list, the values of a
    dict (in its order), nested ones flattened depth-first; other values are dropped."""
    if isinstance(output, dict):
        return [t for value in output.values() for t in flatten_outputs(value)]
    if isinstance(output, (tuple, list)):
        return [t for value in output for t in flatten_outputs(value)]
    return [output] if hasattr(output, "detach") else []


class TorchCapture:
    """Captures one layer's features of a torch model under ``inference_mode``.

    With the default layer (the classifier head) the *input* of the head is captured, i.e. the
    pooled penultimate features; with ``layer=NAME`` the layer's *output*, global-average-pooled
    when it is a feature map. The model runs on ``device`` (a name from :func:`repcurate.frameworks.device.resolve_device`);
    batches are moved there and features come back to the CPU.
    """

    def __init__(self, model: Any, *, layer: str | None, spec: str, device: str = "cpu") -> None:
        import torch

        from repcurate.frameworks.device import concrete_device

        self.device = torch.device(concrete_device(device))
        self.model = model.eval()
        self.model_spec = spec
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
        self.model = self.model.to(self.device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
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
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
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


class TorchFramework:
    """PyTorch ``nn.Module`` models (and the bundled EfficientNet-Lite0)."""

    name = "torch"
    channels_last = False

    def loads(self, spec: str) -> bool:
        return spec == DEFAULT_MODEL_NAME

    def load(self, spec: str) -> Any:
        return load_efficientnet_lite0()

    def owns(self, model: Any) -> bool:
        try:
            import torch.nn as nn
        except ImportError:  # pragma: no cover - torch is a core dependency
            return False
        return isinstance(model, nn.Module)

    def fingerprint(self, model: Any, layer: str) -> str:
        return torch_model_fingerprint(model, layer)

    def capture(self, model: Any, *, layer: str | None, spec: str, device: str = "cpu") -> TorchCapture:
        return TorchCapture(model, layer=layer, spec=spec, device=device)

    def place(self, model: Any, device: str) -> Any:
        """``model`` moved to ``device`` (in place, as ``nn.Module.to`` does)."""
        from repcurate.frameworks.device import concrete_device

        return model.to(concrete_device(device))

    def visit_layer_outputs(self, model: Any, batches: Iterable[np.ndarray], visit: Visit) -> None:
        """Forward hooks on every leaf module (named as in ``named_modules()``); tensor outputs only."""
        import torch

        model = model.eval()
        device = model_device(model)
        handles = []
        for name, module in model.named_modules():
            if name and not list(module.children()):
                def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
                    if isinstance(out, torch.Tensor):
                        visit(name, out.detach().float().cpu().numpy())
                handles.append(module.register_forward_hook(hook))
        try:
            with torch.inference_mode():
                for batch in batches:
                    model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device))
        finally:
            for h in handles:
                h.remove()

    def outputs(self, model: Any, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
        import torch

        device = model_device(model)  # a quantized model lives where MCT built it: the batches follow it
        per_batch = []
        with torch.no_grad():
            for batch in batches_of(x, batch_size):
                tensors = flatten_outputs(model(torch.from_numpy(batch).to(device)))
                per_batch.append([t.detach().float().cpu().numpy() for t in tensors])
        return concatenate_outputs(per_batch)

    def kernel_types(self, model: Any) -> list[tuple[type, str]]:
        import torch.nn as nn

        present = {type(module) for module in model.modules()}  # MCT refuses a filter that matches no layer
        return [(layer, "weight") for layer in (nn.Conv2d, nn.Linear, nn.ConvTranspose2d) if layer in present]

    def kernel_weights(self, model: Any) -> int:
        kinds = tuple(layer for layer, _ in self.kernel_types(model))
        return int(sum(cast(Any, m).weight.numel() for m in model.modules() if kinds and isinstance(m, kinds)))

    @property
    def mct(self) -> Any:
        from repcurate.frameworks.torch_mct import TorchMCT

        return TorchMCT()
