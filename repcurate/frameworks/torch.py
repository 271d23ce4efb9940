"""PyTorch: ``nn.Module`` models — loading, fingerprint, feature capture, layer outputs, kernel types."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np

from repcurate.errors import InputError, UsageError, user_code_failed
from repcurate.frameworks.base import Visit, batches_of, concatenate_outputs, layer_names, output_batch_size, pool_features
from repcurate.frameworks.bundled import DEFAULT_MODEL_NAME, load_efficientnet_lite0
from repcurate.frameworks.device import model_device

log = logging.getLogger("repcurate")
#: Modules whose nn.Module classes another registered framework owns (:mod:`repcurate.frameworks.ultralytics_yolo`).
_OWN_FRAMEWORK_MODULES = ("ultralytics.", "repcurate.frameworks.ultralytics_head")


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


def last_linear(model: Any) -> str | None:
    """Name of the last ``nn.Linear`` in module order (its input is the penultimate feature vector), or None."""
    import torch.nn as nn

    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return linear[-1] if linear else None


def default_head_layer(model: Any) -> str:
    """Name of the last ``nn.Linear`` in module order: its input is the penultimate feature vector."""
    name = last_linear(model)
    if name is None:
        raise UsageError(
            f"{type(model).__name__} has no nn.Linear classifier head to take features from; "
            "fix: pass --layer NAME (see model.named_modules())"
        )
    return name


def flatten_outputs(output: Any) -> list[Any]:
    """A model's output as a flat list of tensors: a tensor, the elements of a tuple or list, the values of a
    dict (in its order), nested ones flattened depth-first; other values are dropped."""
    if isinstance(output, dict):
        return [t for value in output.values() for t in flatten_outputs(value)]
    if isinstance(output, (tuple, list)):
        return [t for value in output for t in flatten_outputs(value)]
    return [output] if hasattr(output, "detach") else []


class TorchCapture:
    """Captures one or several layers' features of a torch model under ``inference_mode``.

    By default, the *input* of the last ``nn.Linear`` (the classifier head), i.e. the pooled penultimate
    features; a model without one gets the feature layer(s) of :mod:`repcurate.frameworks.torch_features`
    (found in its fx graph). With ``layer`` (one name, several comma-separated, or a list) each layer's
    *output*, global-average-pooled when it is a feature map, concatenated in the given order. Names are
    module names (hooked) or torch.fx node names (captured from the traced graph). The model runs on ``device``
    (a name from :func:`repcurate.frameworks.device.resolve_device`); batches are moved there and features come
    back to the CPU.
    """

    def __init__(self, model: Any, *, layer: str | Sequence[str] | None, spec: str, device: str = "cpu") -> None:
        import torch

        from repcurate.frameworks import torch_features
        from repcurate.frameworks.device import concrete_device

        self.device = torch.device(concrete_device(device))
        self.model = model.eval()
        self.model_spec = spec
        names = layer_names(layer)
        head = last_linear(model) if not names else None
        self._capture_input = head is not None
        traced = None
        if head is not None:
            names = [head]
        elif not names:
            traced = torch_features.trace(model, spec)
            names, rule = torch_features.default_feature_nodes(traced, spec)
            log.info("%s has no nn.Linear head: embedding with %s (%s)", spec, ", ".join(names), rule)
        modules = dict(model.named_modules())
        self._graph = None
        unknown = [name for name in names if name not in modules or not name]
        if unknown:
            if traced is None:
                try:
                    traced = torch_features.trace(model, spec)
                except UsageError:
                    close = sorted(n for n in modules if n and unknown[0].split(".")[-1] in n)[:5]
                    hint = f" (similar: {', '.join(close)})" if close else ""
                    raise UsageError(f"layer {unknown[0]!r} not found in {type(model).__name__}{hint}") from None
            self._graph = torch_features.feature_graph(traced, names, spec)
        self.names = names
        self.layer = ",".join(names)
        self._modules = [modules[name] for name in names] if self._graph is None else []
        self.fingerprint = torch_model_fingerprint(model, ("in:" if self._capture_input else "out:") + self.layer)
        self._channels_last = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model = self.model.to(self.device)
        if self._graph is not None:
            self._graph = self._graph.to(self.device)

    def _forward(self, x: Any) -> list[Any]:
        """The wanted tensors of one batch, in ``self.names`` order (hooks stop the pass once all are in)."""
        if self._graph is not None:
            return flatten_outputs(self._graph(x))
        captured: dict[int, Any] = {}

        def hook_for(index: int) -> Any:
            def pre_hook(_module: Any, inputs: tuple[Any, ...]) -> None:
                captured.setdefault(index, inputs[0])
                raise _Captured

            def post_hook(_module: Any, _inputs: Any, output: Any) -> None:
                captured.setdefault(index, output[0] if isinstance(output, (tuple, list)) else output)
                if len(captured) == len(self._modules):
                    raise _Captured
            return pre_hook if self._capture_input else post_hook

        handles = [(module.register_forward_pre_hook(hook_for(i)) if self._capture_input
                    else module.register_forward_hook(hook_for(i))) for i, module in enumerate(self._modules)]
        try:
            try:
                self.model(x)
            except _Captured:
                pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [self.names[i] for i in range(len(self._modules)) if i not in captured]
        if missing:
            raise UsageError(f"layer {missing[0]!r} was not called during the forward pass; fix: pick another --layer")
        return [captured[i] for i in range(len(self._modules))]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self._channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            try:
                tensors = self._forward(x)
            except UsageError:
                raise
            except BaseException as exc:  # a user model's forward raising SystemExit too
                if not user_code_failed(exc):
                    raise
                raise InputError(
                    f"{self.model_spec} failed on a batch of shape {tuple(x.shape)}: {type(exc).__name__}: {exc}; "
                    "fix: make --preprocess return the model's input layout and size"
                ) from exc
        pooled = [pool_features(t.detach().float().cpu().numpy(), channels_last=False) for t in tensors]
        return pooled[0] if len(pooled) == 1 else np.ascontiguousarray(np.concatenate(pooled, axis=1))


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
        # Ultralytics models (and repcurate's traceable form of them) belong to their own framework.
        return isinstance(model, nn.Module) and not type(model).__module__.startswith(_OWN_FRAMEWORK_MODULES)

    def fingerprint(self, model: Any, layer: str) -> str:
        return torch_model_fingerprint(model, layer)

    def capture(self, model: Any, *, layer: str | Sequence[str] | None, spec: str,
                device: str = "cpu") -> TorchCapture:
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

    def outputs(self, model: Any, x: np.ndarray, batch_size: int | None = None) -> list[np.ndarray]:
        import torch

        device = model_device(model)  # a quantized model lives where MCT built it: the batches follow it
        per_batch = []
        with torch.no_grad():
            for batch in batches_of(x, batch_size or output_batch_size(x)):
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
