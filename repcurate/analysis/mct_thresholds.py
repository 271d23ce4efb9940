"""The one door to MCT's internals for the analysis: graph preparation, statistics collection, threshold
selection and bias-correction terms, all by MCT's own code (PyTorch models).

How it stays exact: MCT's :class:`HistogramCollector` keeps one 2,048-bin histogram per representative batch
(edges over that batch's min/max) and merges them lazily; its mean collector averages per-batch channel means
and its min/max collector keeps the extremes. Feeding the pool one image per batch therefore yields, per
quantization point and image, a histogram that MCT itself would merge. We keep those (counts plus the image's
min/max, from which ``np.histogram`` rebuilds the edges bit for bit), the image's min/max and its per-channel
means; for any subset we load the subset's summaries back into the node's collectors and call MCT's
``get_activations_qparams`` (error method, z-threshold, signedness, power-of-two / symmetric / uniform) and
``_compute_bias_correction``. The result is what MCT's PTQ picks when it is fed that subset one image per batch.

Memory: ``2048 × count bytes`` per collected node and image (uint16 counts when the node's tensor has < 65,536
values per image, else uint32), plus 16 bytes of min/max and ``8 × channels`` bytes of means —
:func:`bytes_per_image` bounds it before collection, so callers can cap the number of images to a budget.

Contract: :data:`MCT_FUNCTIONS` names every MCT callable used; ``tests/unit/analysis/test_mct_contract.py``
imports them and checks their signatures, so a moved or changed MCT fails loudly.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

N_BINS = 2048  # MCT's HistogramCollector default, asserted by the contract test

# module path -> attribute, with the parameter names this module passes (checked by the contract test)
MCT_FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "model_compression_toolkit.core.graph_prep_runner.graph_preparation_runner":
        ("graph_preparation_runner", ("in_model", "representative_data_gen", "quantization_config", "fw_info",
                                      "fw_impl", "fqc", "bit_width_config", "tb_w", "mixed_precision_enable",
                                      "running_gptq")),
    "model_compression_toolkit.core.common.model_collector.ModelCollector":
        ("ModelCollector", ("graph", "fw_impl", "fw_info", "hessian_info_service", "qc")),
    "model_compression_toolkit.core.common.quantization.quantization_params_generation."
    "qparams_activations_computation.get_activations_qparams":
        ("get_activations_qparams", ("activation_quant_cfg", "nodes_prior_info", "out_stats_container")),
    "model_compression_toolkit.core.common.quantization.quantization_params_generation."
    "qparams_weights_computation.get_weights_qparams":
        ("get_weights_qparams", ("weights_attr_values", "weights_quant_config", "attr_quant_config",
                                 "output_channels_axis", "node")),
    "model_compression_toolkit.core.common.statistics_correction.compute_bias_correction_of_graph."
    "_compute_bias_correction":
        ("_compute_bias_correction", ("kernel", "quantized_kernel", "in_statistics_container",
                                      "output_channels_axis", "input_channels_axis", "node_name")),
    "model_compression_toolkit.core.common.quantization.quantize_node.get_quantized_weights_attr_by_qc":
        ("get_quantized_weights_attr_by_qc", ("attr_name", "n", "weights_qc")),
    "model_compression_toolkit.core.common.quantization.quantizers.quantizers_helpers.quantize_tensor":
        ("quantize_tensor", ("tensor_data", "threshold", "n_bits", "signed")),
    "model_compression_toolkit.core.common.quantization.quantizers.quantizers_helpers.uniform_quantize_tensor":
        ("uniform_quantize_tensor", ("tensor_data", "range_min", "range_max", "n_bits")),
    "model_compression_toolkit.core.common.quantization.quantization_params_generation.error_functions."
    "_mse_error_histogram":
        ("_mse_error_histogram", ("q_bins", "q_count", "bins", "counts")),
    "model_compression_toolkit.core.common.substitutions.apply_substitutions.substitute":
        ("substitute", ("graph", "substitutions_list")),
    "model_compression_toolkit.core.common.statistics_correction.statistics_correction.statistics_correction_runner":
        ("statistics_correction_runner", ("transformed_graph", "core_config", "fw_info", "fw_impl", "tb_w")),
    "model_compression_toolkit.core.common.hessian.HessianInfoService":
        ("HessianInfoService", ("graph", "fw_impl")),
}


def mct_callable(path: str) -> Any:
    """Import one of :data:`MCT_FUNCTIONS` by its dotted path (ImportError / AttributeError if MCT moved it)."""
    import importlib

    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def check_contract() -> list[str]:
    """What no longer matches MCT: missing callables, renamed parameters, another histogram size ([] = fine)."""
    problems = []
    for path, (_name, params) in MCT_FUNCTIONS.items():
        try:
            fn = mct_callable(path)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        target = fn.__init__ if inspect.isclass(fn) else fn
        have = set(inspect.signature(target).parameters)
        missing = [p for p in params if p not in have]
        if missing:
            problems.append(f"{path}: parameters {missing} gone (has {sorted(have)})")
    from model_compression_toolkit.core.common.collectors.histogram_collector import HistogramCollector

    bins = inspect.signature(HistogramCollector.__init__).parameters["n_bins"].default
    if bins != N_BINS:
        problems.append(f"HistogramCollector n_bins default is {bins}, not {N_BINS}")
    return problems


@dataclass
class Point:
    """One activation quantization point: an MCT graph node whose output MCT quantizes."""

    name: str
    n_bits: int
    method: str
    error_method: str
    counts: list[np.ndarray] = field(default_factory=list, repr=False)  # per image, N_BINS counts
    lo: list[Any] = field(default_factory=list, repr=False)  # per image min (histogram edge dtype)
    hi: list[Any] = field(default_factory=list, repr=False)


@dataclass
class Kernel:
    """A kernel node whose bias MCT corrects: its weight error term and its input point's per-image means."""

    name: str
    eps_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    bias_norm: float = 0.0


@dataclass
class Collected:
    """Per-image statistics of a pool at every quantization point of one model + TPC + quantization config."""

    points: list[Point]
    kernels: list[Kernel]
    means: dict[str, list[np.ndarray]]  # node name -> per-image channel means (every collected node)
    n_images: int
    graph: Any = field(repr=False)
    _nodes: dict[str, Any] = field(repr=False, default_factory=dict)
    context: tuple[Any, Any, Any] | None = field(repr=False, default=None)  # fw_impl, fw_info, core_config
    others: dict[str, Point] = field(repr=False, default_factory=dict)  # nodes MCT collects but does not quantize

    def nbytes(self) -> int:
        """Bytes held by the per-image summaries."""
        total = sum(c.nbytes + 16 for p in self.points for c in p.counts)
        return total + sum(m.nbytes for ms in self.means.values() for m in ms)

    def thresholds(self, subset: Sequence[int]) -> dict[str, dict[str, Any]]:
        """MCT's activation quantization parameters of every point for the images ``subset`` (pool indices, in
        the order PTQ would read them)."""
        get_qparams = mct_callable(_path("get_activations_qparams"))
        out = {}
        for point in self.points:
            node = self._nodes[point.name]
            collector = _load_collector(self.graph.get_out_stats_collector(node), point, self.means.get(point.name),
                                        subset)
            cfg = copy.deepcopy(node.candidates_quantization_cfg[0].activation_quantization_cfg)
            out[point.name] = {k: _plain(v) for k, v in get_qparams(cfg, node.prior_info, collector).items()}
        return out

    def simulate(self, subset: Sequence[int]) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
        """MCT's steps after statistics collection, run on a copy of the graph holding ``subset``'s statistics:
        activation parameters, post-statistics substitutions, shift-negative correction (which adds nodes and
        changes biases) and bias correction. Returns every quantized point's parameters and every corrected
        kernel's final bias (bias after the graph's changes minus MCT's correction term). Slower than
        :meth:`thresholds` (a graph copy per call), exact also where shift-negative correction applies."""
        assert self.context is not None
        fw_impl, fw_info, core = self.context
        get_qparams = mct_callable(_path("get_activations_qparams"))
        graph = copy.deepcopy(self.graph)
        by_name = {n.name: n for n in graph.get_topo_sorted_nodes()}
        every = {**self.others, **{p.name: p for p in self.points}}
        for name, point in every.items():
            collector = graph.get_out_stats_collector(by_name[name])
            loaded = _load_collector(collector, point, self.means.get(name), subset)
            collector.hc, collector.mc, collector.mpcc = loaded.hc, loaded.mc, loaded.mpcc
        for node in graph.get_topo_sorted_nodes():
            if node.is_activation_quantization_enabled():
                for candidate in node.candidates_quantization_cfg:
                    params = get_qparams(candidate.activation_quantization_cfg, node.prior_info,
                                         graph.get_out_stats_collector(node))
                    candidate.activation_quantization_cfg.set_activation_quantization_param(params)
        qc = core.quantization_config
        graph = mct_callable(_path("substitute"))(graph, fw_impl.get_substitutions_post_statistics_collection(qc))
        if qc.shift_negative_activation_correction:
            graph = fw_impl.shift_negative_correction(graph, core, fw_info)
        graph = mct_callable(_path("statistics_correction_runner"))(graph, core, fw_info, fw_impl, None)
        params_out, biases = {}, {}
        for node in graph.get_topo_sorted_nodes():
            candidate = node.candidates_quantization_cfg[0] if node.candidates_quantization_cfg else None
            if candidate is None:
                continue
            if node.is_activation_quantization_enabled():
                params_out[node.name] = {k: _plain(v) for k, v in
                                         candidate.activation_quantization_cfg.activation_quantization_params.items()}
            term = getattr(candidate.weights_quantization_cfg, "bias_corrected", None)
            bias = node.get_weights_by_keys(fw_impl.constants.BIAS)
            if term is not None and bias is not None:
                biases[node.name] = np.asarray(bias, dtype=np.float64) - np.asarray(term, dtype=np.float64)
        return params_out, biases

    def histogram(self, name: str, subset: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """MCT's merged histogram (bins, counts) of one point over ``subset``."""
        point = next(p for p in self.points if p.name == name)
        collector = _load_collector(self.graph.get_out_stats_collector(self._nodes[name]), point, None, subset)
        return collector.hc.get_histogram()

    def bias_terms(self, subset: Sequence[int]) -> dict[str, np.ndarray]:
        """MCT's bias-correction term of every corrected kernel for the images ``subset``."""
        out = {}
        for kernel in self.kernels:
            out[kernel.name] = kernel.eps_fn(np.mean([self.means[_input_of(self, kernel.name)][i] for i in subset],
                                                     axis=0))
        return out


def _path(name: str) -> str:
    return next(p for p, (n, _) in MCT_FUNCTIONS.items() if n == name)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return float(value.reshape(-1)[0]) if value.size == 1 else value.astype(float).tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def _input_of(collected: Collected, kernel: str) -> str:
    node = collected._nodes[kernel]
    return collected.graph.get_prev_nodes(node)[0].name


def _load_collector(template: Any, point: Point | None, means: list[np.ndarray] | None, subset: Sequence[int]) -> Any:
    """A copy of a node's MCT StatsCollector holding exactly what MCT would have collected from ``subset``."""
    collector = copy.copy(template)
    collector.hc = copy.copy(template.hc)
    collector.mc = copy.copy(template.mc)
    collector.mpcc = copy.copy(template.mpcc)
    if point is not None:
        hist = []
        for i in subset:
            edges = np.histogram_bin_edges(np.asarray([point.lo[i], point.hi[i]]), bins=N_BINS)
            hist.append((point.counts[i].astype(np.int64), edges))
        collector.hc._histogram_per_iteration = hist
        collector.hc._bins = collector.hc._counts = None
        collector.mpcc.state = np.asarray([[max(point.hi[i] for i in subset), min(point.lo[i] for i in subset)]])
    if means is not None:
        total = np.sum([means[i] for i in subset], axis=0)
        collector.mc.current_sum, collector.mc.i = total, len(subset)
        collector.mc.current_mean = total / len(subset)
    return collector


def _reset(collector: Any) -> None:
    collector.hc._histogram_per_iteration = []
    collector.hc._bins = collector.hc._counts = None
    collector.weighted_hc._histogram_per_iteration = []
    collector.weighted_hc._bins = collector.weighted_hc._counts = None
    collector.mc.current_sum, collector.mc.current_mean, collector.mc.i = 0, 0, 0
    collector.mpcc.state = None


def prepare_graph(model: Any, first_batch: np.ndarray, core_config: Any, tpc: Any) -> tuple[Any, Any, Any]:
    """MCT's prepared graph (the one PTQ collects statistics on), its PyTorch implementation and info."""
    from model_compression_toolkit.core.pytorch.default_framework_info import DEFAULT_PYTORCH_INFO
    from model_compression_toolkit.core.pytorch.pytorch_implementation import PytorchImplementation
    from model_compression_toolkit.target_platform_capabilities.targetplatform2framework.attach2pytorch import (
        AttachTpcToPytorch,
    )
    from model_compression_toolkit.target_platform_capabilities.tpc_io_handler import (
        load_target_platform_capabilities,
    )

    def gen() -> Iterable[list[np.ndarray]]:
        yield [first_batch]

    fw_impl = PytorchImplementation()
    fqc = AttachTpcToPytorch().attach(load_target_platform_capabilities(tpc),
                                      core_config.quantization_config.custom_tpc_opset_to_layer)
    runner = mct_callable(_path("graph_preparation_runner"))
    graph = runner(model, gen, core_config.quantization_config, DEFAULT_PYTORCH_INFO, fw_impl, fqc,
                   core_config.bit_width_config, None, mixed_precision_enable=False, running_gptq=False)
    return graph, fw_impl, DEFAULT_PYTORCH_INFO


def _channels(node: Any) -> int:
    shape = node.output_shape[0] if isinstance(node.output_shape, list) else node.output_shape
    return int(shape[1]) if shape is not None and len(shape) > 1 and shape[1] is not None else 1


def _with_collectors(model: Any, first: np.ndarray, core_config: Any, tpc: Any) -> tuple[Any, Any, Any, Any]:
    """MCT's prepared graph with its statistics collectors attached (MCT's ModelCollector, as PTQ builds it)."""
    graph, fw_impl, fw_info = prepare_graph(model, first, core_config, tpc)
    hessian = mct_callable(_path("HessianInfoService"))(graph=graph, fw_impl=fw_impl)
    collector_model = mct_callable(_path("ModelCollector"))(graph, fw_impl, fw_info, hessian,
                                                            core_config.quantization_config)
    return graph, collector_model, fw_impl, fw_info


def bytes_per_image(model: Any, first: np.ndarray, core_config: Any, tpc: Any) -> int:
    """Upper bound of the per-image summary size :func:`collect` keeps (uint32 counts at every collected node,
    8 bytes of mean per channel), from MCT's prepared graph, before any collection."""
    graph, _collector_model, _impl, _info = _with_collectors(model, first, core_config, tpc)
    collected = [n for n in graph.get_topo_sorted_nodes()
                 if (c := graph.get_out_stats_collector(n)) is not None and c.require_collection()]
    return sum(N_BINS * 4 + 16 + 8 * _channels(n) for n in collected)


def collect(model: Any, images: Iterable[np.ndarray], core_config: Any, tpc: Any, *,
            first: np.ndarray) -> Collected:
    """One float pass of MCT's own statistics collector over ``images`` (each a batch of one, channels
    first), keeping per image and per quantization point the summary described in the module docstring."""
    graph, collector_model, fw_impl, fw_info = _with_collectors(model, first, core_config, tpc)
    nodes = {n.name: n for n in graph.get_topo_sorted_nodes()}
    qc = core_config.quantization_config
    kernels = _corrected_kernels(graph, fw_info) if qc.weights_bias_correction else []
    mean_nodes = {graph.get_prev_nodes(n)[0].name for n in kernels}
    points, others = [], {}
    for node in graph.get_topo_sorted_nodes():
        collector = graph.get_out_stats_collector(node)
        if not node.is_activation_quantization_enabled() and collector is not None and collector.require_collection():
            others[node.name] = Point(node.name, 0, "", "")
        if node.is_activation_quantization_enabled():
            cfg = node.candidates_quantization_cfg[0].activation_quantization_cfg
            points.append(Point(node.name, int(cfg.activation_n_bits), cfg.activation_quantization_method.name,
                                cfg.activation_error_method.name))
    every = [*points, *others.values()]
    mean_nodes = mean_nodes | {p.name for p in every}
    means: dict[str, list[np.ndarray]] = {name: [] for name in mean_nodes}
    stats = {name: graph.get_out_stats_collector(nodes[name]) for name in mean_nodes}
    n_images = 0
    for x in images:
        for c in stats.values():
            _reset(c)
        collector_model.infer([x])
        for point in every:
            c = stats[point.name]
            counts, edges = c.hc._histogram_per_iteration[0]
            dtype = np.uint16 if counts.sum() < 2**16 else np.uint32
            point.counts.append(counts.astype(dtype))
            point.lo.append(edges[0])
            point.hi.append(edges[-1])
        for name in mean_nodes:
            means[name].append(np.asarray(stats[name].mc.current_mean, dtype=np.float64))
        n_images += 1
    _all_weights_params(graph)
    collected = Collected(points, [], means, n_images, graph, nodes, (fw_impl, fw_info, core_config), others)
    if kernels:
        collected.kernels = _kernel_terms(graph, fw_impl, kernels)
    return collected


def _corrected_kernels(graph: Any, fw_info: Any) -> list[Any]:
    """The kernel nodes MCT's compute_bias_correction_of_graph corrects (same conditions)."""
    out = []
    for n in graph.get_topo_sorted_nodes():
        if fw_info.is_kernel_op(n.type):
            attr = fw_info.get_kernel_op_attributes(n.type)[0]
            if n.is_weights_quantization_enabled(attr) and not n.has_positional_weights:
                out.append(n)
    return out


def _kernel_terms(graph: Any, fw_impl: Any, kernels: list[Any]) -> list[Kernel]:
    """Weight quantization parameters by MCT (data-free), then per kernel a function mean -> correction term
    through MCT's ``_compute_bias_correction``."""
    from model_compression_toolkit.core.pytorch.default_framework_info import DEFAULT_PYTORCH_INFO

    quantized_weights = mct_callable(_path("get_quantized_weights_attr_by_qc"))
    correction = mct_callable(_path("_compute_bias_correction"))
    out = []
    for n in kernels:
        attr = DEFAULT_PYTORCH_INFO.get_kernel_op_attributes(n.type)[0]
        cfg = n.candidates_quantization_cfg[0].weights_quantization_cfg
        q_kernel, (in_axis, out_axis) = quantized_weights(attr, n, cfg.get_attr_config(attr))
        kernel = n.get_weights_by_keys(fw_impl.constants.KERNEL)

        def term(mu: np.ndarray, _k: np.ndarray = kernel, _q: np.ndarray = q_kernel, _o: int = out_axis,
                 _i: int = in_axis, _name: str = n.name) -> np.ndarray:
            holder = _MeanHolder(mu)
            return np.asarray(correction(_k, _q, holder, _o, _i, _name), dtype=np.float64)

        bias = n.get_weights_by_keys(fw_impl.constants.BIAS)
        out.append(Kernel(n.name, term, float(np.linalg.norm(bias)) if bias is not None else 0.0))
    return out


def _all_weights_params(graph: Any) -> None:
    """Every weight's quantization parameters by MCT's get_weights_qparams, as calculate_quantization_params
    computes them (data-free unless the error method is HMSE, which the analysis does not support)."""
    get_weights_qparams = mct_callable(_path("get_weights_qparams"))
    for node in graph.get_topo_sorted_nodes():
        for candidate in node.candidates_quantization_cfg or []:
            for attr in node.get_node_weights_attributes():
                if not node.is_weights_quantization_enabled(attr):
                    continue
                cfg = candidate.weights_quantization_cfg
                attr_cfg = cfg.get_attr_config(attr)
                axis = attr_cfg.weights_channels_axis[0] if attr_cfg.weights_channels_axis is not None else None
                params, axis = get_weights_qparams(node.get_weights_by_keys(attr), cfg, attr_cfg, axis, node=node)
                attr_cfg.weights_channels_axis = (axis, attr_cfg.weights_channels_axis[1])
                attr_cfg.set_weights_quantization_param(params)


class _MeanHolder:
    """The one method ``_compute_bias_correction`` asks of a statistics container."""

    def __init__(self, mean: np.ndarray) -> None:
        self._mean = mean

    def get_mean(self) -> np.ndarray:
        return self._mean


def relative_noise(histogram: tuple[np.ndarray, np.ndarray], params: dict[str, Any], n_bits: int) -> float:
    """Quantization noise (MSE, clipping included) of ``params`` on ``histogram``, by MCT's quantizer and
    histogram MSE, relative to the histogram's signal power (mean square)."""
    bins, counts = histogram
    if "threshold" in params:
        q_bins = mct_callable(_path("quantize_tensor"))(bins, params["threshold"], n_bits, bool(params["is_signed"]))
    else:
        q_bins = mct_callable(_path("uniform_quantize_tensor"))(bins, params["range_min"], params["range_max"], n_bits)
    mse = float(mct_callable(_path("_mse_error_histogram"))(q_bins, None, bins, counts))
    power = float(np.sum(bins[:-1] ** 2 * counts) / max(float(np.sum(counts)), 1.0))
    return mse / power if power > 0 else 0.0
