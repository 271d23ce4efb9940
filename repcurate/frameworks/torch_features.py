"""Feature layers of PyTorch models without a classifier head (detectors, segmenters), read from the fx graph.

The rule (docs/architecture.md, "Feature layer"): trace the model with torch.fx and take

1. the **last node that every model output depends on**, other than the outputs themselves: the output of the
   backbone (or neck) that feeds all the heads — for a single-output model the input of its last layer;
2. if no such node exists (the heads branch right after the input), for every output the **feature map feeding
   its head**: the input of the last parametrised layer the output depends on; those maps are each
   global-average-pooled and concatenated.

A chosen node is named by its module (``backbone.3``, as in ``model.named_modules()``) when it is a module's
only call, else by its fx node name (``add_2``); :func:`feature_graph` captures any mix of such names.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repcurate.errors import UsageError

#: Node ops that compute a value (placeholders, attributes and the output node do not).
_COMPUTING = ("call_module", "call_function", "call_method")
#: Methods / functions returning shapes or Python values, never feature maps.
_NOT_FEATURES = {"size", "dim", "numel", "shape", "getattr", "len"}

RULE_COMMON = "the last node every output depends on"
RULE_HEADS = "the feature maps feeding each output head, pooled and concatenated"


def trace(model: Any, spec: str) -> Any:
    """``torch.fx.symbolic_trace(model)`` (what MCT's reader wraps), or :class:`UsageError` asking for ``--layer``."""
    import torch.fx

    try:
        return torch.fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: name the layer yourself
        raise UsageError(f"{spec}: no nn.Linear head, and torch.fx cannot trace the model to find its feature layer "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                         "fix: pass --layer NAME (see model.named_modules())") from None


def _output_nodes(graph: Any) -> list[Any]:
    from torch.fx.node import map_arg

    output = next(n for n in graph.nodes if n.op == "output")
    found: list[Any] = []

    def collect(node: Any) -> Any:
        found.append(node)
        return node

    map_arg(output.args[0], collect)
    return list(dict.fromkeys(found))


def _ancestors(node: Any) -> set[Any]:
    seen, stack = set(), [node]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(current.all_input_nodes)
    return seen


def _is_feature(node: Any) -> bool:
    return node.op in _COMPUTING and getattr(node.target, "__name__", str(node.target)) not in _NOT_FEATURES


def _name(graph_module: Any, node: Any) -> str:
    """The module name of a module's only call, else the fx node name."""
    if node.op == "call_module":
        calls = sum(1 for n in graph_module.graph.nodes if n.op == "call_module" and n.target == node.target)
        if calls == 1:
            return str(node.target)
    return str(node.name)


def default_feature_nodes(graph_module: Any, spec: str) -> tuple[list[str], str]:
    """The layer names :data:`the rule <repcurate.frameworks.torch_features>` picks, and which part of it did."""
    nodes = list(graph_module.graph.nodes)
    order = {node: i for i, node in enumerate(nodes)}
    outputs = _output_nodes(graph_module.graph)
    if not outputs:
        raise UsageError(f"{spec}: the traced model returns no tensor; fix: pass --layer NAME")
    lineage = [_ancestors(o) for o in outputs]
    common = set.intersection(*lineage) - set(outputs)
    shared = sorted((n for n in common if _is_feature(n)), key=order.__getitem__)
    if shared:
        return [_name(graph_module, shared[-1])], RULE_COMMON
    modules = dict(graph_module.named_modules())
    chosen: list[str] = []
    for ancestors in lineage:
        heads = [n for n in sorted(ancestors, key=order.__getitem__) if n.op == "call_module"
                 and any(True for _ in modules[n.target].parameters(recurse=False))]
        if not heads or not heads[-1].all_input_nodes or heads[-1].all_input_nodes[0].op == "placeholder":
            raise UsageError(f"{spec}: an output head reads the model input directly, so no layer between input and "
                             "outputs describes the image; fix: pass --layer NAME (see model.named_modules())")
        chosen.append(_name(graph_module, heads[-1].all_input_nodes[0]))
    return list(dict.fromkeys(chosen)), RULE_HEADS


def feature_graph(graph_module: Any, names: Sequence[str], spec: str) -> Any:
    """A copy of the traced model that returns the tensors of ``names`` (module names or fx node names), in order;
    the rest of the network (the heads) is dropped."""
    import copy

    import torch.fx

    graph_module = torch.fx.GraphModule(graph_module, copy.deepcopy(graph_module.graph))
    by_name = {n.name: n for n in graph_module.graph.nodes}
    by_module: dict[str, Any] = {}
    for node in graph_module.graph.nodes:
        if node.op == "call_module":
            by_module.setdefault(str(node.target), node)
    wanted = []
    for name in names:
        node = by_module.get(name) or by_name.get(name)
        if node is None or node.op not in _COMPUTING:
            close = sorted(n for n in [*by_module, *by_name] if name.split(".")[-1] in n)[:5]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise UsageError(f"layer {name!r} not found in {spec}{hint}; fix: pass --layer with a module name "
                             "from model.named_modules() or a torch.fx node name")
        wanted.append(node)
    output = next(n for n in graph_module.graph.nodes if n.op == "output")
    output.args = (tuple(wanted),)
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    return graph_module
