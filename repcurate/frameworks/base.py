"""What every framework offers the rest of repcurate (cf. MCT's ``FrameworkImplementation``).

One object per deep-learning framework (PyTorch, Keras) answers every framework-specific question:
which specs and objects it loads, a model's fingerprint, its feature layer, its layer outputs, its outputs
on a batch (always a *list* of arrays), its kernel layer types, and the glue MCT needs. Code outside
:mod:`repcurate.frameworks` asks the object and never branches on a framework's name.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: ``visit(name, output)``: called once per layer (or graph node) output and batch.
Visit = Callable[[str, np.ndarray], None]


def pool_features(features: np.ndarray, *, channels_last: bool) -> np.ndarray:
    """Global-average-pool 3-D/4-D feature maps to one vector per sample; flatten the rest."""
    if features.ndim == 4:
        axes = (1, 2) if channels_last else (2, 3)
        features = features.mean(axis=axes)
    elif features.ndim == 3:
        features = features.mean(axis=1 if channels_last else 2)
    return np.ascontiguousarray(features.reshape(features.shape[0], -1), dtype=np.float32)


def layer_names(layer: str | Sequence[str] | None) -> list[str]:
    """``--layer`` values as a list of names: one name, several comma-separated, or a sequence of such strings."""
    if layer is None:
        return []
    texts = [layer] if isinstance(layer, str) else list(layer)
    return list(dict.fromkeys(part.strip() for text in texts for part in str(text).split(",") if part.strip()))


#: Input elements per forward batch when a model's outputs are computed (16 MiB of float32 input): 256 images of
#: 28×28, 27 RGB images of 224×224. A quantized 224×224 EfficientNet-Lite0 scored in batches of 256 held 23 GB.
OUTPUT_BATCH_ELEMENTS = 1 << 22
#: The most rows per such batch.
MAX_OUTPUT_BATCH = 256


def output_batch_size(tensors: np.ndarray) -> int:
    """Rows per batch for :meth:`Framework.outputs` on ``tensors``: as many as fit ``OUTPUT_BATCH_ELEMENTS`` input
    elements (at least 1, at most ``MAX_OUTPUT_BATCH``), so memory stays bounded for large inputs."""
    per_row = max(1, int(np.prod(tensors.shape[1:], dtype=np.int64)))
    return max(1, min(MAX_OUTPUT_BATCH, OUTPUT_BATCH_ELEMENTS // per_row))


def batches_of(tensors: np.ndarray, batch_size: int) -> Iterable[np.ndarray]:
    """``tensors`` in consecutive slices of at most ``batch_size`` rows, float32 and contiguous."""
    for start in range(0, len(tensors), batch_size):
        yield np.ascontiguousarray(tensors[start:start + batch_size], dtype=np.float32)


def concatenate_outputs(per_batch: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per-batch output lists → one float64 array per output, batches concatenated along axis 0."""
    if not per_batch:
        return []
    return [np.concatenate([batch[i] for batch in per_batch]).astype(np.float64) for i in range(len(per_batch[0]))]


class FeatureCapture(Protocol):
    """One layer's features of a model: ``capture(batch)`` → pooled ``(n, d)`` float32."""

    #: The layer's name as recorded in a manifest (``NAME`` for an output, ``NAME:input`` or the head's name
    #: for the default input capture; several layers comma-separated).
    layer: str
    #: Stable hash of the model's architecture, weights and this layer.
    fingerprint: str

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Pooled features of one preprocessed batch."""
        ...


class LayerGraph(Protocol):
    """The nodes MCT quantizes, as the doctor inspects them: their outputs, kinds and concatenations."""

    def visit(self, batches: Iterable[np.ndarray], visit: Visit) -> None:
        """Call ``visit(node_name, output)`` for every tensor-valued node output, batch by batch."""

    def kinds(self) -> dict[str, str]:
        """Node name → kind (layer class or activation function name)."""

    def concatenations(self) -> list[tuple[str, list[str]]]:
        """Every concatenation node and the names of the nodes it concatenates."""

    def inputs(self) -> dict[str, list[str]]:
        """Node name → the names of the nodes it reads, in graph order (constants are nodes of kind ``get_attr``;
        the model's outputs are the inputs of the node of kind ``output``, when the graph has one)."""


@dataclass
class Preflight:
    """Whether MCT can read the model's graph, and if not, where and what to do. ``name`` is the doctor
    step's title, or None when the framework has nothing to check before PTQ (its layer graph is the model)."""

    ok: bool
    graph: LayerGraph | None = None
    error: str | None = None
    location: str | None = None
    remedies: list[str] = field(default_factory=list)
    name: str | None = None
    #: What read the graph, for the doctor's summary (e.g. ``MCT's torch.fx tracer``).
    reader: str = "MCT's graph reader"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "error": self.error, "location": self.location, "remedies": self.remedies}


class MCTGlue(Protocol):
    """What MCT needs from one framework: its facade functions, exporter, model rewrites, graph reader."""

    #: The suffix of MCT's exported model file (``.onnx``, ``.keras``).
    export_suffix: str
    #: The framework's word in MCT's facade names (``pytorch``, ``keras``) — also used in generated snippets.
    facade: str

    def prepare(self, model: Any) -> tuple[Any, list[str]]:
        """The float model MCT will quantize, and the output-preserving rewrites applied to it."""

    def ptq(self) -> Callable[..., Any]:
        """``mct.ptq.<facade>_post_training_quantization``."""

    def gptq(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """``mct.gptq.<facade>_gradient_post_training_quantization`` and its config factory."""

    def require_exporter(self) -> None:
        """Raise MissingDependencyError when exporting would fail for a missing package."""

    def set_device(self, device: str) -> None:
        """Make MCT build and run quantized models on ``device`` (a resolved name), the device repcurate's own
        tensors use, so a quantized model and the eval batches never sit on different devices."""

    def export(self, q_model: Any, path: Any, data_gen: Any) -> None:
        """Write ``q_model`` with MCT's exporter to ``path``."""

    def preflight(self, model: Any, sample: np.ndarray) -> Preflight:
        """Read the model's graph the way MCT does, before any PTQ run (the doctor's preflight)."""

    def activation_nodes(self, q_model: Any) -> list[str]:
        """Names of the graph nodes whose activations MCT quantized in ``q_model``."""

    def activation_bits(self, q_model: Any) -> dict[str, int]:
        """The activation bit width MCT chose for every node of :meth:`activation_nodes` in ``q_model``."""

    def xquant(self) -> Callable[..., Any] | None:
        """MCT's XQuant troubleshooting function for this framework, or None when MCT has none."""

    def snippet_kernels(self, weights_bits: int) -> tuple[str, list[str], str]:
        """For generated code: the import line, the kernel layer type expressions and their attribute name."""


class Framework(Protocol):
    """One deep-learning framework. Members are registered in :mod:`repcurate.frameworks.registry`."""

    #: Stable id recorded in manifests and JSON (``torch``, ``keras``).
    name: str
    #: Whether preprocessed samples are channels-last (HWC) for this framework's image models.
    channels_last: bool

    def loads(self, spec: str) -> bool:
        """Whether this framework loads the model named by a spec string itself (a file type, a bundled name)."""

    def load(self, spec: str) -> Any:
        """The model named by ``spec`` (only called when :meth:`loads` said yes)."""

    def owns(self, model: Any) -> bool:
        """Whether ``model`` is one of this framework's model objects (without importing heavy packages)."""

    def fingerprint(self, model: Any, layer: str) -> str:
        """Stable hash of the model's architecture, weights and ``layer``."""

    def capture(self, model: Any, *, layer: str | Sequence[str] | None, spec: str,
                device: str = "cpu") -> FeatureCapture:
        """Features of ``layer`` (its output; several names: each pooled, concatenated), or by default the input
        of the last Linear/Dense layer (a model without one: the framework's rule, e.g. the torch fx-graph rule of
        :mod:`repcurate.frameworks.torch_features`), computed on ``device`` (a name from
        :func:`repcurate.frameworks.device.resolve_device`), returned on the CPU."""

    def place(self, model: Any, device: str) -> Any:
        """``model`` made to run on ``device`` (PyTorch: moved there; Keras: TensorFlow restricted to it), returned.
        :meth:`outputs` and :meth:`visit_layer_outputs` then feed batches to wherever the model is."""

    def visit_layer_outputs(self, model: Any, batches: Iterable[np.ndarray], visit: Visit) -> None:
        """Call ``visit(layer_name, output)`` for every layer's output, batch by batch (float model)."""

    def outputs(self, model: Any, x: np.ndarray, batch_size: int | None = None) -> list[np.ndarray]:
        """The model's outputs on ``x`` as a list of float64 arrays, one per output (a single tensor, each
        element of a tuple or list, each value of a dict in key order), in batches of ``batch_size`` rows
        (default :func:`output_batch_size`)."""

    def kernel_types(self, model: Any) -> list[tuple[type, str]]:
        """(layer type, kernel attribute) of every quantizable kernel layer type present in ``model``."""

    def kernel_weights(self, model: Any) -> int:
        """How many kernel weights ``model`` has (8-bit weights memory in bytes)."""

    @property
    def mct(self) -> MCTGlue:
        """The glue MCT needs for this framework."""
