"""Render a :class:`~repcurate.confirming.ConfirmResult` as text, JSON or Markdown (the metric's display scale
and unit come from its task)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from repcurate import tasks

if TYPE_CHECKING:
    from repcurate.confirming import ConfirmResult


def _fmt(value: float | None, metric: str) -> str:
    return tasks.metric(metric).format(value)


def _export_line(result: ConfirmResult) -> list[str]:
    if result.export is None:
        return []
    e = result.export
    return ["", f"exported: {e['dir']}/{e['file']} ({e['set']}, bias correction {'on' if e['bias_correction'] else 'off'}, "
                f"{e['selected_by']})"]


def render_json(result: ConfirmResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"


def _render(result: ConfirmResult, fmt: str) -> str:
    m = result.metric
    header = ["bias correction", "curated", "random mean ± std", "random worst", "first-N"]
    rows = [[("on" if r["bias_correction"] else "off"), _fmt(r["curated"], m),
             f"{_fmt(r['random_mean'], m)} ± {_fmt(r['random_std'], m)}", _fmt(r["random_worst"], m),
             _fmt(r["first_n"], m)] for r in result.summary()]
    title = (f"{m} on {result.settings['eval_images']} held-out images, {result.settings['weights_bits']}-bit weights; "
             f"float model: {_fmt(result.float[m], m)} ({tasks.metric(m).direction}"
             f"{'; ' + result.settings['task'] + ' vs the ' + result.settings['reference'] if 'task' in result.settings else ''})")
    verdicts = [f"bias correction {'on' if r['bias_correction'] else 'off'}: {r['verdict']}" for r in result.summary()]
    runs = [f"{a['set']:<12} bc {'on ' if a['bias_correction'] else 'off'} {_fmt(a['metric'][m], m):>8}  PTQ {a['ptq_seconds']:.1f} s"
            for a in result.arms]
    if fmt == "markdown":
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + [""] + [f"- {v}" for v in verdicts] + _export_line(result)) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    exported = _export_line(result)
    return "\n".join(lines + [""] + verdicts + ["", "runs:"] + runs + exported) + "\n"


def render_text(result: ConfirmResult) -> str:
    return _render(result, "text")


def render_markdown(result: ConfirmResult) -> str:
    return _render(result, "markdown")


RENDERERS: dict[str, Callable[[ConfirmResult], str]] = {"text": render_text, "json": render_json,
                                                       "markdown": render_markdown}
