"""Check contract: a check *computes* a JSON-safe value; its *condition* maps it to a status."""
from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from repcurate.checks.context import CheckContext, MissingInput, Unavailable


class Status(str, enum.Enum):  # noqa: UP042 - str() of a member stays "Status.PASS" as before
    """Outcome of one check; ``error`` means the check itself crashed."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@dataclass(frozen=True)
class Param:
    """A tunable check parameter: its default and the closed range ``[minimum, maximum]`` it may take.

    The default's type is the parameter's type: an ``int`` parameter takes integers only, a ``float``
    one takes any finite number (integers widen to float). Booleans are neither.
    """

    default: int | float
    minimum: int | float | None = None
    maximum: int | float | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def describe(self) -> str:
        """The allowed values in words, e.g. "an integer >= 1" or "a number from 0 to 1"."""
        noun = "an integer" if self.kind is int else "a finite number"
        if self.minimum is not None and self.maximum is not None:
            noun = "an integer" if self.kind is int else "a number"
            return f"{noun} from {_number(self.minimum)} to {_number(self.maximum)}"
        if self.minimum is not None:
            return f"{noun} >= {_number(self.minimum)}"
        if self.maximum is not None:
            return f"{noun} <= {_number(self.maximum)}"
        return noun

    def validate(self, value: Any) -> int | float:
        """``value`` as this parameter's type; ``ValueError`` (with :meth:`describe`) when it is not allowed."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.kind is int and isinstance(value, float)):
            raise ValueError(self.describe())
        value = self.kind(value)
        if not math.isfinite(value):
            raise ValueError(self.describe())
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(self.describe())
        return value


@dataclass
class Measurement:
    """What a check computed: a headline value, a message and JSON-safe details."""

    value: Any
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    #: Set when the check cannot run on these inputs (e.g. no labels); the message says why.
    skipped: bool = False


@dataclass(frozen=True)
class ReportInputs:
    """What a check's HTML-report figure may use besides its own JSON entry: the set's manifest, its calibration
    tensors (row i ↔ sample i, read on demand), the evaluation pipeline given to the report (None: the recorded
    one, re-run only when repcurate's own or with ``trust_set``)."""

    manifest: dict[str, Any]
    tensors: Callable[[], Any]
    eval_preprocess: Any = None
    trust_set: bool = False


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
    """Base class. Subclasses set ``id``, ``description``, ``parameters`` (every tunable parameter as a
    :class:`Param`: default and allowed range) and implement :meth:`measure` and :meth:`judge`.
    ``defaults`` (name → default) is derived from ``parameters``."""

    id: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Param]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    #: A required check cannot be turned off with ``skip`` (the gate would check nothing without it).
    required: ClassVar[bool] = False

    #: Pipelines the check needs (``EVAL_PIPELINE`` / ``EMBEDDINGS`` of :mod:`repcurate.checks.context`): code a
    #: set names for them is refused up front without ``trust_set``.
    uses: ClassVar[frozenset[str]] = frozenset()

    #: The HTML report's panel this check fills with :meth:`report_view` (None: the card shows its details only).
    report_panel: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = {name: param.default for name, param in cls.parameters.items()}

    def measure(self, ctx: CheckContext, params: dict[str, Any]) -> Measurement:
        raise NotImplementedError

    def judge(self, measurement: Measurement, params: dict[str, Any]) -> tuple[Status, str]:
        """Condition: map the measurement to a status and a message (default: pass)."""
        return Status.PASS, measurement.message

    @classmethod
    def report_view(cls, entry: dict[str, Any], inputs: ReportInputs) -> dict[str, Any] | None:
        """The check's own figure for the HTML report, from its JSON ``entry`` (status, value, details): a dict the
        report's ``report_panel`` section renders, or None when there is nothing to draw. Optional."""
        return None

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
        except MissingInput as exc:  # the set lacks what this check needs: that fails it, never skips it
            return CheckResult(self.id, Status.FAIL, None, str(exc), {"missing": exc.what}, self.description)
        except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not propagated
            return CheckResult(self.id, Status.ERROR, None, f"check crashed: {type(exc).__name__}: {exc}",
                               {"exception": type(exc).__name__}, self.description)
        return CheckResult(self.id, status, measurement.value, message, measurement.details, self.description)
