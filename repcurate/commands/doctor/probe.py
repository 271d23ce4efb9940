"""Float-model activation statistics per graph node on the representative set, for any framework's
:class:`~repcurate.frameworks.base.LayerGraph` (PyTorch: fx nodes; Keras: layers)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from repcurate.frameworks.base import LayerGraph, batches_of

#: Activations whose outputs go negative: MCT's shift-negative correction targets these.
NEGATIVE_ACTIVATIONS = ("SiLU", "LeakyReLU", "Hardswish", "GELU", "PReLU", "ELU", "SELU", "CELU", "Mish",
                        "silu", "leaky_relu", "hardswish", "gelu", "prelu", "elu", "selu", "celu", "mish",
                        "swish", "hard_swish", "hard_silu")  # torch modules / functions, Keras activations
_SAMPLE_PER_BATCH = 1 << 16


@dataclass
class NodeStats:
    """One graph node's output values over the representative set."""

    name: str
    kind: str
    minimum: float
    maximum: float
    mean: float
    std: float
    p999: float
    negative_fraction: float

    @property
    def range(self) -> float:
        """max − min."""
        return self.maximum - self.minimum

    @property
    def max_z(self) -> float:
        """The largest z-score of any value (what MCT's ``z_threshold`` filter compares against)."""
        if self.std <= 0:
            return 0.0
        return max(self.maximum - self.mean, self.mean - self.minimum) / self.std

    @property
    def tail_ratio(self) -> float:
        """max |x| / 99.9th percentile of |x|: large when a few values are far beyond the rest."""
        peak = max(abs(self.maximum), abs(self.minimum))
        return peak / self.p999 if self.p999 > 0 else (0.0 if peak == 0 else float("inf"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "kind": self.kind, "min": round(self.minimum, 6), "max": round(self.maximum, 6),
                "mean": round(self.mean, 6), "std": round(self.std, 6), "p99.9_abs": round(self.p999, 6),
                "max_z": round(self.max_z, 2), "tail_ratio": round(min(self.tail_ratio, 1e12), 2),
                "negative_fraction": round(self.negative_fraction, 6)}


class StatsAccumulator:
    """Running sums, extremes and a strided |x| sample of one node's outputs, batch after batch."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0
        self.negative = 0
        self.minimum = np.inf
        self.maximum = -np.inf
        self.samples: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        flat = values.reshape(-1).astype(np.float64)
        self.count += flat.size
        self.total += float(flat.sum())
        self.squares += float(np.square(flat).sum())
        self.negative += int((flat < 0).sum())
        self.minimum = min(self.minimum, float(flat.min()))
        self.maximum = max(self.maximum, float(flat.max()))
        step = max(1, flat.size // _SAMPLE_PER_BATCH)
        self.samples.append(np.abs(flat[::step]))

    def stats(self, name: str, kind: str) -> NodeStats:
        mean = self.total / self.count
        var = max(self.squares / self.count - mean * mean, 0.0)
        return NodeStats(name=name, kind=kind, minimum=self.minimum, maximum=self.maximum, mean=mean,
                         std=float(np.sqrt(var)), p999=float(np.quantile(np.concatenate(self.samples), 0.999)),
                         negative_fraction=self.negative / self.count)


def activation_stats(graph: LayerGraph, tensors: np.ndarray, batch_size: int = 32) -> dict[str, NodeStats]:
    """Statistics of every tensor-valued node of ``graph`` over ``tensors`` (in graph order)."""
    accumulators: dict[str, StatsAccumulator] = {}

    def visit(name: str, values: np.ndarray) -> None:
        accumulators.setdefault(name, StatsAccumulator()).add(values)

    graph.visit(batches_of(tensors, batch_size), visit)
    kinds = graph.kinds()
    return {name: acc.stats(name, kinds.get(name, "?")) for name, acc in accumulators.items() if acc.count}
