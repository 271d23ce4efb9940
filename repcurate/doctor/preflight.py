"""torch.fx preflight: trace a PyTorch model the way MCT does, before any PTQ run."""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The remedies MCT's troubleshooting guide gives for models torch.fx cannot trace.
FX_REMEDIES = (
    "replace data-dependent Python control flow (if / while on tensor values) with tensor ops such as torch.where",
    "move untraceable code (input checks, dynamic shapes, asserts) out of forward() or into pre-/post-processing",
    "avoid converting tensors to Python values (.item(), int(tensor), len(tensor)) inside forward()",
    "trace only the part of the network that runs on the accelerator; keep the rest outside the quantized model",
)


@dataclass
class Preflight:
    """Whether MCT's tracer can read the model, and if not, where and what to do."""

    ok: bool
    graph_module: Any = None
    error: str | None = None
    location: str | None = None
    remedies: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "error": self.error, "location": self.location, "remedies": self.remedies}


def _user_frame(exc: BaseException) -> str | None:
    """``file:line: source`` of the innermost traceback frame outside torch (the user's model code)."""
    import torch

    torch_dir = str(Path(torch.__file__).resolve().parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(torch_dir) and "model_compression_toolkit" not in f.filename
              and not f.filename.endswith(("repcurate/doctor/preflight.py",))]
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
    except Exception as exc:
        return Preflight(ok=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                         location=_user_frame(exc), remedies=list(FX_REMEDIES))
    try:
        with torch.no_grad():
            ShapeProp(graph_module).propagate(torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32)))
    except Exception as exc:
        return Preflight(ok=False, error=f"shape propagation failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                         location=_user_frame(exc), remedies=list(FX_REMEDIES))
    return Preflight(ok=True, graph_module=graph_module)


def max_output_difference(original: Any, rewritten: Any, tensors: np.ndarray, batch_size: int = 32) -> float:
    """Largest absolute output difference of two PyTorch models on ``tensors`` (proves a rewrite exact)."""
    import torch

    worst = 0.0
    with torch.no_grad():
        for start in range(0, len(tensors), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(tensors[start:start + batch_size], dtype=np.float32))
            worst = max(worst, float((original(batch) - rewritten(batch)).abs().max()))
    return worst
