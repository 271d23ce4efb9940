"""Render a :class:`~repcurate.commands.confirm.ConfirmResult` as text, JSON or Markdown (the metric's display scale
and unit come from its task)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from repcurate import tasks
from repcurate.render.grid_points import point_of, point_title, point_value, point_words

if TYPE_CHECKING:
    from repcurate.commands.confirm import ConfirmResult


def _fmt(value: float | None, metric: str) -> str:
    return tasks.metric(metric).format(value)


def _summary_point(row: dict[str, Any], arms: list[dict[str, Any]]) -> dict[str, Any]:
    axes = list(point_of(arms[0])) if arms else ["bias_correction"]
    return {axis: row[axis] for axis in axes if axis in row}


def _quantizer_words(settings: dict[str, Any]) -> str:
    name = settings.get("quantizer", "mct")
    return "MCT" if name == "mct" else "ONNX Runtime (QDQ, int8 activations)" if name == "onnxruntime" else str(name)


def _export_line(result: ConfirmResult) -> list[str]:
    if result.export is None:
        return []
    e = result.export
    return ["", f"exported: {e['dir']}/{e['file']} ({e['set']}, {point_words(point_of(e))}, {e['selected_by']})"]


def _size_lines(result: ConfirmResult, fmt: str) -> list[str]:
    """The metric-vs-size table and the recommended size per grid point (``sizes`` runs only)."""
    rows = result.size_curve()
    if not rows:
        return []
    m = result.metric
    axes = list(point_of(result.arms[0]))
    header = ["size", point_title(dict.fromkeys(axes)), "curated", "random min", "random mean ± std", "random max",
              "random spread"]
    table = [[str(r["size"]), point_value({a: r[a] for a in axes}), _fmt(r["curated"], m), _fmt(r["random_min"], m),
              f"{_fmt(r['random_mean'], m)} ± {_fmt(r['random_std'], m)}", _fmt(r["random_max"], m),
              _fmt(r["random_spread"], m)] for r in sorted(rows, key=lambda r: r["size"])]
    unit = tasks.metric(m).unit_suffix
    title = f"{m} by calibration set size (tolerance {result.settings.get('tolerance')}{unit})"
    advice = [f"{point_words({a: r[a] for a in axes if a in r})}: "
              + (f"recommended size {r['size']}: {r['reason']}" if r["size"] is not None else f"no size recommended: {r['reason']}")
              for r in result.recommendations()]
    if fmt == "markdown":
        return (["", f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                + ["| " + " | ".join(r) + " |" for r in table] + [""] + [f"- {a}" for a in advice])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    return (["", title, "  ".join(h.ljust(w) for h, w in zip(header, widths))]
            + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table] + [""] + advice)


def render_json(result: ConfirmResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"


def _render(result: ConfirmResult, fmt: str) -> str:
    m = result.metric
    summary = result.summary()
    points = [_summary_point(r, result.arms) for r in summary]
    header = [point_title(points[0]) if points else "bias correction", "curated", "random mean ± std", "random worst",
              "first-N"]
    rows = [[point_value(p), _fmt(r["curated"], m),
             f"{_fmt(r['random_mean'], m)} ± {_fmt(r['random_std'], m)}", _fmt(r["random_worst"], m),
             _fmt(r["first_n"], m)] for p, r in zip(points, summary)]
    at_size = f" (sets of {max(a['size'] for a in result.arms if 'size' in a)})" if result.size_curve() else ""
    title = (f"{m} on {result.settings['eval_images']} held-out images, {_quantizer_words(result.settings)}, "
             f"{result.settings['weights_bits']}-bit weights{at_size}; float model: {_fmt(result.float[m], m)} "
             f"({tasks.metric(m).direction}"
             f"{'; ' + result.settings['task'] + ' vs the ' + result.settings['reference'] if 'task' in result.settings else ''})")
    verdicts = [f"{point_words(p)}: {r['verdict']}" for p, r in zip(points, summary)]
    runs = [f"{a['set']:<12} {'' if 'size' not in a else str(a['size']) + ' ':<5}{point_words(point_of(a)):<22} "
            f"{_fmt(a['metric'][m], m):>8}  PTQ {a['ptq_seconds']:.1f} s" for a in result.arms]
    if fmt == "markdown":
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + [""] + [f"- {v}" for v in verdicts] + _size_lines(result, fmt) + _export_line(result)) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    exported = _export_line(result)
    return "\n".join(lines + [""] + verdicts + _size_lines(result, fmt) + ["", "runs:"] + runs + exported) + "\n"


def render_text(result: ConfirmResult) -> str:
    return _render(result, "text")


def render_markdown(result: ConfirmResult) -> str:
    return _render(result, "markdown")


RENDERERS: dict[str, Callable[[ConfirmResult], str]] = {"text": render_text, "json": render_json,
                                                       "markdown": render_markdown}
