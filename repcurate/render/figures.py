"""The report's plots, drawn with matplotlib and returned as ``data:`` URIs (deterministic bytes).

Scatter plots of many points are PNG (size independent of the point count); bar and line charts
are SVG with text kept as text. No pyplot: every figure is a private ``Figure`` object, so drawing
never touches the caller's matplotlib state. Same inputs give byte-identical output: SVG ids are
salted with a fixed string, and neither format carries a date or a software tag.
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from repcurate import tasks
from repcurate.errors import MissingDependencyError
from repcurate.render.grid_points import point_of, point_words
from repcurate.render.thumbnails import data_uri

#: Unselected points drawn at most per scatter plot (a seeded sample): the picture stays readable and fast.
MAX_BACKGROUND_POINTS = 6000
#: Class panels drawn at most (the largest classes first).
MAX_CLASS_PANELS = 24
#: Layers shown at most in the activation-range bar chart.
MAX_LAYER_BARS = 15

_STYLE = {
    "svg.hashsalt": "repcurate", "svg.fonttype": "none", "font.size": 8.5, "axes.titlesize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False, "legend.frameon": False,
    "figure.dpi": 100, "savefig.dpi": 100, "savefig.bbox": None, "font.family": "DejaVu Sans",
}
_METADATA = {"svg": {"Date": None, "Creator": None, "Format": None, "Type": None}, "png": {"Software": None}}
_MIME = {"svg": "image/svg+xml", "png": "image/png"}
SELECTED = "#d62728"
BACKGROUND = "#b8bec6"
CURATED, RANDOM, FIRST_N, FLOAT = "#1f77b4", "#7f7f7f", "#ff7f0e", "#2ca02c"


@contextmanager
def _style() -> Iterator[Any]:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib comes with MCT
        raise MissingDependencyError("matplotlib", purpose="the HTML report's figures") from None
    with matplotlib.rc_context(_STYLE):
        yield Figure


def _uri(fig: Any, fmt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, metadata=_METADATA[fmt])
    return data_uri(buffer.getvalue(), _MIME[fmt])


def class_colours(count: int) -> list[str]:
    """One colour per class (tab10, tab20, then a cycled hue wheel)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    n = cmap.N
    return [matplotlib.colors.to_hex(cmap(i % n)) for i in range(count)]


def _background_rows(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if rows.size > MAX_BACKGROUND_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_BACKGROUND_POINTS, replace=False))
    return rows


def projection_overview(xy: np.ndarray, label: np.ndarray, sample: np.ndarray, class_names: Sequence[str],
                        ratios: Sequence[float]) -> str:
    """The whole pool on its first two principal components, coloured by class; selected images ringed."""
    colours = class_colours(len(class_names))
    selected = sample >= 0
    with _style() as Figure:
        fig = Figure(figsize=(7.2, 5.0), layout="constrained")
        ax = fig.add_subplot()
        rows = _background_rows(~selected)
        point_colours = np.array([colours[i] if 0 <= i < len(colours) else BACKGROUND for i in label])
        ax.scatter(xy[rows, 0], xy[rows, 1], s=6, c=point_colours[rows], alpha=0.35, linewidths=0)
        ax.scatter(xy[selected, 0], xy[selected, 1], s=22, c=point_colours[selected], edgecolors="black",
                   linewidths=0.6)
        if len(class_names) <= 20:
            for name, colour in zip(class_names, colours):
                ax.scatter([], [], s=22, c=colour, edgecolors="black", linewidths=0.6, label=name)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, title="class")
        ax.set_xlabel(f"PC 1 ({ratios[0]:.0%} of variance)")
        ax.set_ylabel(f"PC 2 ({ratios[1]:.0%} of variance)")
        ax.set_title(f"{int(selected.sum())} selected (ringed) among {len(xy)} training images")
        return _uri(fig, "png")


def projection_per_class(xy_class: np.ndarray, label: np.ndarray, sample: np.ndarray,
                         class_names: Sequence[str]) -> tuple[str, int]:
    """One small panel per class (its own PCA): the class's images grey, the selected ones red.
    Returns the PNG URI and how many classes were drawn (the largest, at most ``MAX_CLASS_PANELS``)."""
    sizes = np.bincount(label[label >= 0], minlength=len(class_names))
    order = sorted(range(len(class_names)), key=lambda i: (-int(sizes[i]), i))[:MAX_CLASS_PANELS]
    order = sorted(i for i in order if sizes[i] > 0)
    columns = min(5, max(1, len(order)))
    rows_n = -(-len(order) // columns)
    with _style() as Figure:
        fig = Figure(figsize=(1.75 * columns, 1.75 * rows_n + 0.1))  # a fixed grid: constrained layout costs seconds here
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.3 / (1.75 * rows_n + 0.1), wspace=0.08, hspace=0.25)
        for panel, i in enumerate(order):
            ax = fig.add_subplot(rows_n, columns, panel + 1)
            members = label == i
            chosen = members & (sample >= 0)
            rows = _background_rows(members & ~chosen, seed=i)
            ax.scatter(xy_class[rows, 0], xy_class[rows, 1], s=3, c=BACKGROUND, linewidths=0)
            ax.scatter(xy_class[chosen, 0], xy_class[chosen, 1], s=9, c=SELECTED, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{class_names[i]} ({int(chosen.sum())}/{int(members.sum())})", fontsize=7.5)
        return _uri(fig, "png"), len(order)


def coverage_bars(coverage: dict[str, Any]) -> str:
    """Mean and max distance to the nearest selected image: curated vs random sets (mean ± std)."""
    curated, random = coverage["curated"], coverage["random"]
    with _style() as Figure:
        fig = Figure(figsize=(4.6, 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(2)
        ax.bar(x - 0.18, [curated["mean"], curated["max"]], 0.36, color=CURATED, label="curated")
        ax.bar(x + 0.18, [random["mean"]["mean"], random["max"]["mean"]], 0.36, color=RANDOM,
               yerr=[random["mean"]["std"], random["max"]["std"]], capsize=3,
               label=f"random (mean ± std of {random.get('draws', '?')})")
        ax.set_xticks(x, ["mean distance", "max distance"])
        ax.set_ylabel("to nearest selected (lower is better)")
        ax.legend(fontsize=7.5)
        return _uri(fig, "svg")


def shift_projection(set_xy: np.ndarray, eval_xy: np.ndarray, ratios: Sequence[float]) -> str:
    """The set's and the eval set's samples on the principal components of their union."""
    with _style() as Figure:
        fig = Figure(figsize=(5.2, 3.8), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter(eval_xy[:, 0], eval_xy[:, 1], s=8, c=RANDOM, alpha=0.5, linewidths=0, label=f"eval ({len(eval_xy)})")
        ax.scatter(set_xy[:, 0], set_xy[:, 1], s=10, c=CURATED, alpha=0.8, linewidths=0, label=f"set ({len(set_xy)})")
        ax.set_xlabel(f"PC 1 ({ratios[0]:.0%})")
        ax.set_ylabel(f"PC 2 ({ratios[1]:.0%})")
        ax.legend(fontsize=7.5, markerscale=1.5)
        return _uri(fig, "png")


def channel_stats(channels: dict[str, Any]) -> str:
    """Per input channel: mean ± std of the set's tensors and of the eval pipeline's."""
    count = len(channels["set_mean"])
    with _style() as Figure:
        fig = Figure(figsize=(max(3.2, 1.0 + 0.9 * count), 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(count)
        ax.errorbar(x - 0.1, channels["set_mean"], yerr=channels["set_std"], fmt="o", color=CURATED, capsize=3, label="set")
        ax.errorbar(x + 0.1, channels["eval_mean"], yerr=channels["eval_std"], fmt="s", color=RANDOM, capsize=3, label="eval")
        ax.set_xticks(x, [f"channel {i}" for i in range(count)])
        ax.set_xlim(-0.6, count - 0.4)
        ax.set_ylabel("tensor value (mean ± std)")
        ax.legend(fontsize=7.5)
        return _uri(fig, "svg")


def activation_bars(layers: Sequence[dict[str, Any]]) -> str:
    """The worst layers' share of eval activations outside the set's range, as horizontal bars."""
    shown = list(layers[:MAX_LAYER_BARS])[::-1]
    with _style() as Figure:
        fig = Figure(figsize=(6.4, 0.6 + 0.24 * max(1, len(shown))), layout="constrained")
        ax = fig.add_subplot()
        values = [100.0 * float(r["outside_fraction"]) for r in shown]
        ax.barh(np.arange(len(shown)), values, color=SELECTED)
        ax.set_yticks(np.arange(len(shown)), [str(r["layer"]) for r in shown], fontsize=7)
        ax.set_xlabel("eval activations outside the set's [min, max] (%)")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=7)
        return _uri(fig, "svg")


def value_histograms(set_tensor: np.ndarray, eval_tensor: np.ndarray) -> str:
    """The value distributions of the same file through both pipelines (scale and offset differences)."""
    with _style() as Figure:
        fig = Figure(figsize=(4.2, 2.3), layout="constrained")
        ax = fig.add_subplot()
        a, b = np.asarray(set_tensor, dtype=np.float64).ravel(), np.asarray(eval_tensor, dtype=np.float64).ravel()
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
        ax.hist(a, bins=bins, color=CURATED, alpha=0.6, label="set pipeline")
        ax.hist(b, bins=bins, color=FIRST_N, histtype="step", linewidth=1.6, label="eval pipeline")  # visible over identical bars
        ax.set_xlabel("tensor value")
        ax.set_ylabel("count")
        ax.legend(fontsize=7.5)
        return _uri(fig, "svg")


def _is_percent(metric: str) -> bool:
    return tasks.metric(metric).scale == 100.0


def confirm_plot(report: dict[str, Any]) -> str:
    """The metric of every PTQ run by calibration set, one series per settings-grid point (MCT: bias
    correction on / off; ONNX Runtime: calibration method), with the random sets' band (mean ± std) and the
    float model as a dashed line. With ``sizes``, the runs at the largest size."""

    metric = report["metric"]
    scale = 100.0 if _is_percent(metric) else 1.0
    arms = report["arms"]
    sized = [a["size"] for a in arms if "size" in a]
    arms = [a for a in arms if a.get("size") == max(sized)] if sized else arms
    names = list(dict.fromkeys(a["set"] for a in arms))
    texts = {json.dumps(point_of(a), sort_keys=True): point_of(a) for a in arms}
    settings = [texts[t] for t in sorted(texts, reverse=True)]
    colours = [CURATED, FIRST_N, FLOAT, SELECTED, RANDOM]
    with _style() as Figure:
        fig = Figure(figsize=(max(4.8, 1.2 + 0.8 * len(names)), 3.2), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(len(names))
        for k, point in enumerate(settings):
            bc = point_words(point)
            colour = colours[k % len(colours)]
            offset = (k - (len(settings) - 1) / 2) * 0.12
            runs = {a["set"]: a["metric"][metric] * scale for a in arms if point_of(a) == point}
            random = [v for name, v in runs.items() if name.startswith("random-")]
            if random:
                mean, std = float(np.mean(random)), float(np.std(random))
                ax.axhspan(mean - std, mean + std, color=colour, alpha=0.12, linewidth=0)
                ax.axhline(mean, color=colour, alpha=0.5, linewidth=0.8, linestyle=":")
            shown = [i for i, name in enumerate(names) if name in runs]
            ax.plot(x[shown] + offset, [runs[names[i]] for i in shown], "o", color=colour,
                    label=bc + (" (band: random mean ± std)" if random else ""))
        float_value = report.get("float", {}).get(metric)
        if float_value is not None:
            ax.axhline(float_value * scale, color=FLOAT, linestyle="--", linewidth=1, label="float model")
        ax.set_xticks(x, names, rotation=20 if len(names) > 5 else 0)
        ax.set_ylabel(f"{metric}{' (%)' if scale == 100.0 else ''}")
        ax.legend(fontsize=7.5, loc="best")
        return _uri(fig, "svg")


def size_curve_plot(report: dict[str, Any]) -> str:
    """``confirm --sizes``: the metric against the calibration set size (log-scaled axis), per settings-grid
    point: the curated subsets as a line, the random sets' min..max as a band with their mean dotted, the
    recommended size marked and the float model dashed."""

    metric = report["metric"]
    scale = 100.0 if _is_percent(metric) else 1.0
    rows = report["size_curve"]
    recommended = report.get("size_recommendation", [])
    axes = [k for k in rows[0] if k not in ("size", "curated", "random_min", "random_mean", "random_max", "random_std",
                                             "random_spread", "random_runs")]
    points: dict[str, dict[str, Any]] = {}
    for r in rows:
        points.setdefault(json.dumps({a: r[a] for a in axes}, sort_keys=True), {a: r[a] for a in axes})
    colours = [CURATED, FIRST_N, FLOAT, SELECTED]
    with _style() as Figure:
        fig = Figure(figsize=(5.6, 3.4), layout="constrained")
        ax = fig.add_subplot()
        for k, point in enumerate(points.values()):
            colour = colours[k % len(colours)]
            mine = sorted((r for r in rows if all(r[a] == point[a] for a in axes)), key=lambda r: r["size"])
            sizes = [r["size"] for r in mine]
            words = point_words(point)
            banded = [r for r in mine if r["random_min"] is not None]
            if banded:
                ax.fill_between([r["size"] for r in banded], [r["random_min"] * scale for r in banded],
                                [r["random_max"] * scale for r in banded], color=colour, alpha=0.15, linewidth=0,
                                label=f"random min..max ({words})")
                ax.plot([r["size"] for r in banded], [r["random_mean"] * scale for r in banded], ":", color=colour,
                        linewidth=1)
            ax.plot(sizes, [r["curated"] * scale for r in mine], "o-", color=colour, label=f"curated ({words})")
            pick = next((r["size"] for r in recommended if all(r.get(a) == point[a] for a in axes)), None)
            if pick is not None:
                value = next(r["curated"] for r in mine if r["size"] == pick) * scale
                ax.plot([pick], [value], marker="*", markersize=13, color=colour, linestyle="none",
                        label=f"recommended: {pick}")
        float_value = report.get("float", {}).get(metric)
        if float_value is not None:
            ax.axhline(float_value * scale, color=FLOAT, linestyle="--", linewidth=1, label="float model")
        all_sizes = sorted({r["size"] for r in rows})
        ax.set_xscale("log")
        ax.set_xticks(all_sizes, [str(s) for s in all_sizes])
        ax.minorticks_off()
        ax.set_xlabel("calibration images")
        ax.set_ylabel(f"{metric}{' (%)' if scale == 100.0 else ''}")
        ax.legend(fontsize=7, loc="best")
        return _uri(fig, "svg")
