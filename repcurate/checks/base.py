"""Check contract: a check *computes* a JSON-safe value; its *condition* maps it to a status."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from repcurate.checks.context import CheckContext, Unavailable


class Status(str, enum.Enum):
    """Outcome of one check; ``error`` means the check itself crashed."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass
class Measurement:
    """What a check computed: a headline value, a message and JSON-safe details."""

    value: Any
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    #: Set when the check cannot run on these inputs (e.g. no labels); the message says why.
    skipped: bool = False


@dataclass
class CheckResult:
    """One check's verdict, JSON-ready."""

    id: str
    status: Status
    value: Any
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "value": self.value, "message": self.message,
                "details": self.details}


class Check:
    """Base class. Subclasses set ``id``, ``description``, ``defaults`` (every tunable parameter with
    its default) and implement :meth:`measure` and :meth:`judge`."""

    id: ClassVar[str]
    description: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    #: Pipelines the check needs (``EVAL_PIPELINE`` / ``EMBEDDINGS`` of :mod:`repcurate.checks.context`): code a
    #: set names for them is refused up front without ``trust_set``.
    uses: ClassVar[frozenset[str]] = frozenset()

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        raise NotImplementedError

    def judge(self, measurement: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        """Condition: map the measurement to a status and a message (default: pass)."""
        return Status.PASS, measurement.message

    def run(self, ctx: CheckContext, params: dict[str, Any]) -> CheckResult:
        """Measure then judge; exceptions become ``error`` results (the suite decides what they mean)."""
        try:
            measurement = self.measure(ctx, params)
            if measurement.skipped:
                status, message = Status.SKIPPED, measurement.message
            else:
                status, message = self.judge(measurement, params)
        except Unavailable as exc:
            return CheckResult(self.id, Status.SKIPPED, None, f"skipped: {exc}", {}, self.description)
        except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not propagated
            return CheckResult(self.id, Status.ERROR, None, f"check crashed: {type(exc).__name__}: {exc}",
                               {"exception": type(exc).__name__}, self.description)
        return CheckResult(self.id, status, measurement.value, message, measurement.details, self.description)
