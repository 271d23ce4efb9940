"""Render a :class:`~repcurate.commands.doctor.result.DoctorResult` as text, JSON or Markdown."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from repcurate import tasks

if TYPE_CHECKING:
    from repcurate.commands.doctor.result import DoctorResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def _text(result: DoctorResult) -> str:
    """Plain-text report (no final newline)."""
    if result.baseline is None:
        lines = ["doctor: stopped before any PTQ run — MCT cannot read the model", ""]
        for finding in result.findings:
            lines.append(f"- {finding.step}: {finding.status} — {finding.summary}")
            lines += [f"    → {advice}" for advice in finding.advice]
        return "\n".join(lines)
    lines = [f"doctor: {result.metric} float {_pct(result.float_metric)}, MCT defaults {_pct(result.baseline)}, "
             f"recommended {_pct(result.final)} (tolerance {result.tolerance:g} points: "
             f"{'met' if result.within_tolerance() else 'missed'}; {tasks.metric(result.metric).direction})",
             f"{result.ptq_runs} PTQ runs in {result.seconds:.0f} s", "", "findings (by measured gain):"]
    for finding in result.ranked():
        gain = "" if finding.gain is None else f" [{finding.gain:+.2f} points]"
        lines.append(f"- {finding.step}: {finding.status}{gain} — {finding.summary}")
        for exp in finding.experiments:
            value = f"{_pct(exp.metric)}" if exp.skipped is None else f"skipped ({exp.skipped})"
            lines.append(f"    {value:>8}  {exp.settings.label()}")
        lines += [f"    → {advice}" for advice in finding.advice]
    lines += ["", f"recommended: {result.recommended.label()}", "", result.recommended.python(result.framework)]
    return "\n".join(lines)


def render_markdown(result: DoctorResult) -> str:
    """Markdown report."""
    if result.baseline is None:
        body = [f"- **{f.step}**: {f.status} — {f.summary}" + "".join(f"\n  - {a}" for a in f.advice)
                for f in result.findings]
        return "\n".join(["## repcurate doctor", "", "Stopped before any PTQ run: MCT cannot read the model.", "",
                          *body]) + "\n"
    lines = ["## repcurate doctor", "",
             f"{result.metric}: float **{_pct(result.float_metric)}**, MCT defaults **{_pct(result.baseline)}**, "
             f"recommended **{_pct(result.final)}** — tolerance {result.tolerance:g} points "
             f"{'met' if result.within_tolerance() else 'missed'}; {result.ptq_runs} PTQ runs, {result.seconds:.0f} s "
             f"({tasks.metric(result.metric).direction}).", "",
             "| step | status | gain (points) | summary |", "|---|---|---|---|"]
    for finding in result.ranked():
        gain = "" if finding.gain is None else f"{finding.gain:+.2f}"
        lines.append(f"| {finding.step} | {finding.status} | {gain} | {finding.summary} |")
    lines += ["", "### Measurements", "", f"| step | configuration | {result.metric} | seconds |", "|---|---|---|---|"]
    for finding in result.findings:
        for exp in finding.experiments:
            value = _pct(exp.metric) if exp.skipped is None else f"skipped: {exp.skipped}"
            lines.append(f"| {finding.step} | {exp.settings.label()} | {value} | {exp.seconds:.1f} |")
    advice = [f"- **{f.step}**: {a}" for f in result.ranked() for a in f.advice]
    if advice:
        lines += ["", "### Advice", "", *advice]
    lines += ["", "### Recommended configuration", "", "```python", result.recommended.python(result.framework).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def render_text(result: DoctorResult) -> str:
    """Plain-text report."""
    return _text(result) + "\n"


def render_json(result: DoctorResult) -> str:
    """What ``--format json`` writes and ``repcurate report --doctor`` reads."""
    return json.dumps(result.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[DoctorResult], str]] = {"text": render_text, "json": render_json,
                                                      "markdown": render_markdown}
