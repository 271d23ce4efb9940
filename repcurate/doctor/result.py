"""The doctor's findings, recommendation and their text / Markdown / JSON forms."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repcurate.doctor.settings import PTQSettings

EDITOR_CAVEAT = ("MCT's network editor is a debugging aid, not a deployment setting: 16-bit activations show where "
                 "the accuracy goes; fix those layers in the model (their ranges) or use a target that supports 16 bits.")


@dataclass
class Experiment:
    """One PTQ run: its configuration and what it measured on the eval images (None when skipped)."""

    settings: PTQSettings
    metric: float | None = None
    seconds: float = 0.0
    skipped: str | None = None
    hits: Any = field(default=None, repr=False, compare=False)  # per-image correctness (numpy bool array)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"config": self.settings.label(), "settings": self.settings.to_dict(), "metric": self.metric,
                "seconds": round(self.seconds, 2), "skipped": self.skipped}


@dataclass
class Finding:
    """One troubleshooting step: what it detected, what it measured, and its gain over the config it started from."""

    step: str
    status: str  # "fix found", "no gain", "nothing to fix", "problem", "skipped", "failed"
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    experiments: list[Experiment] = field(default_factory=list)
    gain: float | None = None
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"step": self.step, "status": self.status, "summary": self.summary, "gain": self.gain,
                "details": self.details, "advice": self.advice, "experiments": [e.to_dict() for e in self.experiments]}


@dataclass
class DoctorResult:
    """Everything ``repcurate doctor`` found and measured."""

    metric: str
    float_metric: float
    baseline: float | None
    final: float | None
    tolerance: float
    recommended: PTQSettings
    framework: str
    findings: list[Finding] = field(default_factory=list)
    ptq_runs: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> list[Finding]:
        """Findings by measured gain (largest first), then those without a gain in step order."""
        with_gain = sorted((f for f in self.findings if f.gain is not None), key=lambda f: -f.gain)  # type: ignore[operator]
        return with_gain + [f for f in self.findings if f.gain is None]

    def within_tolerance(self) -> bool:
        """Whether the recommended configuration is within ``tolerance`` points of float."""
        return self.final is not None and (self.float_metric - self.final) * 100 <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--format json`` writes and ``repcurate report --doctor`` reads)."""
        return {"metric": self.metric, "gain_unit": f"{self.metric} points", "float": self.float_metric, "baseline": self.baseline, "final": self.final,
                "tolerance_points": self.tolerance, "within_tolerance": self.within_tolerance(),
                "findings": [f.to_dict() for f in self.ranked()],
                "recommended_config": {"json": self.recommended.to_dict(),
                                       "python": self.recommended.python(self.framework),
                                       "label": self.recommended.label()},
                "ptq_runs": self.ptq_runs, "seconds": round(self.seconds, 1), "settings": self.settings}

    def _pct(self, value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.2f}"

    def text(self) -> str:
        """Plain-text report."""
        if self.baseline is None:
            lines = ["doctor: stopped before any PTQ run — MCT cannot read the model", ""]
            for finding in self.findings:
                lines.append(f"- {finding.step}: {finding.status} — {finding.summary}")
                lines += [f"    → {advice}" for advice in finding.advice]
            return "\n".join(lines)
        lines = [f"doctor: {self.metric} float {self._pct(self.float_metric)}, MCT defaults {self._pct(self.baseline)}, "
                 f"recommended {self._pct(self.final)} (tolerance {self.tolerance:g} points: "
                 f"{'met' if self.within_tolerance() else 'missed'})",
                 f"{self.ptq_runs} PTQ runs in {self.seconds:.0f} s", "", "findings (by measured gain):"]
        for finding in self.ranked():
            gain = "" if finding.gain is None else f" [{finding.gain:+.2f} points]"
            lines.append(f"- {finding.step}: {finding.status}{gain} — {finding.summary}")
            for exp in finding.experiments:
                value = f"{self._pct(exp.metric)}" if exp.skipped is None else f"skipped ({exp.skipped})"
                lines.append(f"    {value:>8}  {exp.settings.label()}")
            lines += [f"    → {advice}" for advice in finding.advice]
        lines += ["", f"recommended: {self.recommended.label()}", "", self.recommended.python(self.framework)]
        return "\n".join(lines)

    def markdown(self) -> str:
        """Markdown report."""
        if self.baseline is None:
            body = [f"- **{f.step}**: {f.status} — {f.summary}" + "".join(f"\n  - {a}" for a in f.advice)
                    for f in self.findings]
            return "\n".join(["## repcurate doctor", "", "Stopped before any PTQ run: MCT cannot read the model.", "",
                              *body]) + "\n"
        lines = ["## repcurate doctor", "",
                 f"{self.metric}: float **{self._pct(self.float_metric)}**, MCT defaults **{self._pct(self.baseline)}**, "
                 f"recommended **{self._pct(self.final)}** — tolerance {self.tolerance:g} points "
                 f"{'met' if self.within_tolerance() else 'missed'}; {self.ptq_runs} PTQ runs, {self.seconds:.0f} s.", "",
                 "| step | status | gain (points) | summary |", "|---|---|---|---|"]
        for finding in self.ranked():
            gain = "" if finding.gain is None else f"{finding.gain:+.2f}"
            lines.append(f"| {finding.step} | {finding.status} | {gain} | {finding.summary} |")
        lines += ["", "### Measurements", "", f"| step | configuration | {self.metric} | seconds |", "|---|---|---|---|"]
        for finding in self.findings:
            for exp in finding.experiments:
                value = self._pct(exp.metric) if exp.skipped is None else f"skipped: {exp.skipped}"
                lines.append(f"| {finding.step} | {exp.settings.label()} | {value} | {exp.seconds:.1f} |")
        advice = [f"- **{f.step}**: {a}" for f in self.ranked() for a in f.advice]
        if advice:
            lines += ["", "### Advice", "", *advice]
        lines += ["", "### Recommended configuration", "", "```python", self.recommended.python(self.framework).rstrip(), "```"]
        return "\n".join(lines) + "\n"
