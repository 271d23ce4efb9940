"""torch.fx: trace a PyTorch model the way MCT does (the doctor's preflight), and read the traced graph.

The doctor reads float activations per *fx node*, not per module (as :meth:`TorchFramework.visit_layer_outputs`
does): MCT names its graph nodes after the fx nodes (``NodeNameFilter`` needs those names), and functional ops
such as ``torch.cat`` or ``x * 64`` are nodes without a module, invisible to forward hooks.
"""
from __future__ import annotations

import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.frameworks.base import Preflight, Visit

#: The doctor step's title for this preflight.
PREFLIGHT_NAME = "torch.fx preflight"
READER = "MCT's torch.fx tracer"
CONCAT_FUNCTIONS = ("cat", "concat", "concatenate")

#: The remedies MCT's troubleshooting guide gives for models torch.fx cannot trace.
FX_REMEDIES = (
    "replace data-dependent Python control flow (if / while on tensor values) with tensor ops such as torch.where",
    "move untraceable code (input checks, dynamic shapes, asserts) out of forward() or into pre-/post-processing",
    "avoid converting tensors to Python values (.item(), int(tensor), len(tensor)) inside forward()",
    "trace only the part of the network that runs on the accelerator; keep the rest outside the quantized model",
)


def node_kind(graph_module: Any, node: Any) -> str:
    """The module class name or function name behind an fx node."""
    if node.op == "call_module":
        return type(graph_module.get_submodule(node.target)).__name__
    if node.op in ("call_function", "call_method"):
        return getattr(node.target, "__name__", str(node.target))
    return node.op


class FxGraph:
    """A traced ``torch.fx.GraphModule`` as the doctor reads it (node names are MCT's node names)."""

    def __init__(self, graph_module: Any) -> None:
        self.graph_module = graph_module

    def visit(self, batches: Iterable[np.ndarray], visit: Visit) -> None:
        """Every floating-point, non-empty tensor a node computes (the output node excepted), in graph order."""
        import torch
        from torch.fx import Interpreter

        class Recorder(Interpreter):
            def run_node(self, n: Any) -> Any:
                result = super().run_node(n)
                if n.op != "output" and isinstance(result, torch.Tensor) and result.is_floating_point() and result.numel():
                    visit(n.name, result.detach().cpu().numpy())
                return result

        from repcurate.frameworks.device import model_device

        recorder = Recorder(self.graph_module)
        device = model_device(self.graph_module)
        with torch.no_grad():
            for batch in batches:
                recorder.run(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device))

    def kinds(self) -> dict[str, str]:
        return {n.name: node_kind(self.graph_module, n) for n in self.graph_module.graph.nodes}

    def inputs(self) -> dict[str, list[str]]:
        return {n.name: [i.name for i in n.all_input_nodes] for n in self.graph_module.graph.nodes}

    def concatenations(self) -> list[tuple[str, list[str]]]:
        found = []
        for node in self.graph_module.graph.nodes:
            if node.op == "call_function" and getattr(node.target, "__name__", "") in CONCAT_FUNCTIONS:
                tensors = node.args[0] if node.args else node.kwargs.get("tensors", [])
                found.append((node.name, [t.name for t in tensors if hasattr(t, "name")]))
        return found


def _user_frame(exc: BaseException) -> str | None:
    """``file:line: source`` of the innermost traceback frame outside torch (the user's model code)."""
    import torch

    torch_dir = str(Path(torch.__file__).resolve().parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(torch_dir) and "model_compression_toolkit" not in f.filename
              and not f.filename.endswith(("repcurate/frameworks/torch_trace.py",))]
    if not frames:
        return None
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"


def trace(model: Any, sample: np.ndarray) -> Preflight:
    """Trace ``model`` with MCT's own fx tracer and propagate shapes on ``sample`` (one batch)."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        from model_compression_toolkit.core.pytorch.reader.reader import _trace_model as mct_trace
    except ImportError:  # MCT moved its tracer: torch.fx's is what it wraps
        mct_trace = torch.fx.symbolic_trace
    try:
        graph_module = mct_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is the preflight's finding
        from repcurate.frameworks.ultralytics_hint import untraceable_hint

        hint = untraceable_hint(model)
        return Preflight(ok=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                         location=_user_frame(exc), remedies=([hint] if hint else []) + list(FX_REMEDIES),
                         name=PREFLIGHT_NAME, reader=READER)
    from repcurate.frameworks.device import model_device

    try:
        with torch.no_grad():
            ShapeProp(graph_module).propagate(
                torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32)).to(model_device(graph_module)))
    except Exception as exc:  # noqa: BLE001 - any shape-propagation failure is the preflight's finding
        return Preflight(ok=False, error=f"shape propagation failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                         location=_user_frame(exc), remedies=list(FX_REMEDIES), name=PREFLIGHT_NAME, reader=READER)
    return Preflight(ok=True, graph=FxGraph(graph_module), name=PREFLIGHT_NAME, reader=READER)
