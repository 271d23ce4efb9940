"""Find a detector's box decoding in the graph MCT quantizes: the anchor arithmetic after the head's last kernel
layer (YOLOv8 / YOLO11: ``anchor − distance``, ``anchor + distance``, their concatenation, × stride, after the DFL
expectation), whose outputs are pixel coordinates with a range hundreds of times the class scores'.

A node is in the **tail** when no convolution or dense layer reads it, directly or further on. The box decoding is
every ``sub`` / ``add`` / ``mul`` / ``cat`` node of the tail that reads a constant (anchors, strides), and every such
node of the tail that reads one of those (through shape operations: reshape, permute, ...) — so a final
concatenation of boxes and sigmoid scores (Ultralytics' own ``Detect`` output) is included, and the class branch
(its sigmoid) is not. These are the operators whose 16-bit activations IMX500 TPC 4.0 allows (``div`` is not).
"""
from __future__ import annotations

from dataclasses import dataclass

#: Layers with kernels: the box decoding lies after the last of them on every path to an output.
KERNEL_KINDS = frozenset({"Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "Linear", "conv2d", "linear",
                          "Conv2D", "Conv1D", "DepthwiseConv2D", "Conv2DTranspose", "Dense"})
#: Box-decoding operators 16-bit activations are set on (torch functions / methods, Keras layers).
DECODE_KINDS = frozenset({"sub", "add", "mul", "cat", "concat", "concatenate", "rsub", "Subtract", "Add", "Multiply",
                          "Concatenate"})
#: Class-score activations: a detection head's tail holds one.
SCORE_KINDS = frozenset({"sigmoid", "Sigmoid"})
#: Node kinds that are not computations: constants, inputs, the output.
CONSTANT, STRUCTURE = "get_attr", frozenset({"placeholder", "output", "InputLayer"})


@dataclass(frozen=True)
class HeadNodes:
    """The box-decoding nodes of a detector's tail (graph order) and the class-score activations beside them."""

    decoding: tuple[str, ...]
    scores: tuple[str, ...]


def box_decoding(kinds: dict[str, str], inputs: dict[str, list[str]]) -> HeadNodes | None:
    """The box decoding of the graph whose node kinds and inputs are given (both in graph order), or None when
    the tail holds no anchor arithmetic or no class-score sigmoid (boxes decoded outside the model, or not a
    detector)."""
    users: dict[str, list[str]] = {name: [] for name in kinds}
    for name, sources in inputs.items():
        for source in sources:
            users.setdefault(source, []).append(name)
    order = list(kinds)
    feeds_kernel: dict[str, bool] = {}
    for name in reversed(order):
        feeds_kernel[name] = any(kinds.get(u) in KERNEL_KINDS or feeds_kernel.get(u, False) for u in users.get(name, []))
    tail = {n for n in order if not feeds_kernel[n] and kinds[n] != CONSTANT and kinds[n] not in STRUCTURE
            and kinds[n] not in KERNEL_KINDS}
    decoding: list[str] = []
    downstream: set[str] = set()  # nodes computed from the box decoding
    for name in order:
        if name not in tail:
            continue
        sources = inputs.get(name, [])
        reads_constant = any(kinds.get(s) == CONSTANT for s in sources)
        reads_decoding = any(s in downstream for s in sources)
        if kinds[name] in DECODE_KINDS and (reads_constant or reads_decoding):
            decoding.append(name)
            downstream.add(name)
        elif reads_decoding and kinds[name] not in SCORE_KINDS:
            downstream.add(name)
    scores = tuple(n for n in order if n in tail and kinds[n] in SCORE_KINDS and n not in downstream)
    if not decoding or not scores:
        return None
    return HeadNodes(tuple(decoding), scores)
