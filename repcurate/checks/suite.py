"""Run every registered check and reduce the results to one verdict."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from repcurate.checks.base import CheckResult, Status
from repcurate.checks.context import CheckContext
from repcurate.checks.registry import registered

log = logging.getLogger("repcurate")


@dataclass
class SuiteResult:
    """All check results and the verdict: ``fail`` if any check failed (or crashed, unless errors
    are allowed), else ``warn`` if any warned, else ``pass``."""

    checks: list[CheckResult]
    allow_errors: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "check"

    @property
    def verdict(self) -> str:
        statuses = {c.status for c in self.checks}
        if Status.FAIL in statuses or (Status.ERROR in statuses and not self.allow_errors):
            return "fail"
        if Status.WARN in statuses:
            return "warn"
        return "pass"

    def passed(self, *, fail_on: str = "fail") -> bool:
        """Whether a CI gate passes: ``fail_on="warn"`` also fails on warnings."""
        return self.verdict == "pass" or (self.verdict == "warn" and fail_on == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "checks": [c.to_dict() for c in self.checks], "inputs": self.inputs,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def run_suite(ctx: CheckContext, params: dict[str, dict[str, Any]], *, skip: list[str] | None = None,
              allow_errors: bool = False) -> SuiteResult:
    """Run the checks in registry order (shared statistics are computed once, on first use)."""
    results: list[CheckResult] = []
    seconds: dict[str, float] = {}
    for check_class in registered():
        check = check_class()
        if skip and check.id in skip and not check.required:
            results.append(CheckResult(check.id, Status.SKIPPED, None, "skipped by configuration", {}, check.description))
            continue
        started = time.perf_counter()
        result = check.run(ctx, params[check.id])
        seconds[check.id] = time.perf_counter() - started
        log.info("%-22s %-7s %s", check.id, result.status.value, result.message)
        results.append(result)
    return SuiteResult(results, allow_errors=allow_errors, seconds=seconds)
