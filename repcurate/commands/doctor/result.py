"""The doctor's findings and recommendation, and their JSON form (text / Markdown: repcurate.report.doctor_formats)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from repcurate.quantize.mct import MCTSettings

EDITOR_CAVEAT = ("MCT's network editor is a debugging aid, not a deployment setting: 16-bit activations show where "
                 "the accuracy goes; fix those layers in the model (their ranges) or use a target that supports 16 bits.")


@dataclass
class Experiment:
    """One PTQ run: its configuration and what it measured on the eval images (None when skipped)."""

    settings: MCTSettings
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

    kind: ClassVar[str] = "doctor"

    metric: str
    float_metric: float
    baseline: float | None
    final: float | None
    tolerance: float
    recommended: MCTSettings
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
        """Whether the recommended configuration is within ``tolerance`` points of float (:meth:`passed`)."""
        return self.final is not None and (self.float_metric - self.final) * 100 <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--format json`` writes and ``repcurate report --doctor`` reads)."""
        return {"metric": self.metric, "gain_unit": f"{self.metric} points", "float": self.float_metric,
                "baseline": self.baseline, "final": self.final,
                "tolerance_points": self.tolerance, "within_tolerance": self.within_tolerance(),
                "findings": [f.to_dict() for f in self.ranked()],
                "recommended_config": {"json": self.recommended.to_dict(),
                                       "python": self.recommended.python(self.framework),
                                       "label": self.recommended.label()},
                "ptq_runs": self.ptq_runs, "seconds": round(self.seconds, 1), "settings": self.settings}

    def passed(self) -> bool:
        """The gate (exit code 0): the recommended configuration is within tolerance of float."""
        return self.within_tolerance()
