"""Render a :class:`SuiteResult` as text, JSON, JUnit XML (GitHub Actions / GitLab / Jenkins) or Markdown."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable

from repcurate.checks.base import Status
from repcurate.checks.suite import SuiteResult

FORMATS = ("text", "json", "junit", "markdown")
#: Details that only feed the HTML report's figures (coordinates), left out of the JUnit body.
PLOT_ONLY_DETAILS = frozenset({"projection"})
_MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_text(result: SuiteResult, *, fail_on: str = "fail") -> str:
    lines = [f"{'check':<22} {'status':<6} {'value':>8}  message"]
    for c in result.checks:
        lines.append(f"{c.id:<22} {_MARK[c.status.value]:<6} {_value(c.value):>8}  {c.message}")
    gate = "passed" if result.passed(fail_on=fail_on) else "failed"
    lines.append(f"verdict: {result.verdict.upper()} (gate {gate}, --fail-on {fail_on})")
    return "\n".join(lines) + "\n"


def render_json(result: SuiteResult, *, fail_on: str = "fail") -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def render_junit(result: SuiteResult, *, fail_on: str = "fail") -> str:
    """One ``<testcase>`` per check; warnings count as failures only with ``fail_on="warn"``."""
    def is_failure(status: Status) -> bool:
        return status is Status.FAIL or (status is Status.WARN and fail_on == "warn")

    suite = ET.Element("testsuite", {
        "name": "repcurate.check", "tests": str(len(result.checks)),
        "failures": str(sum(is_failure(c.status) for c in result.checks)),
        "errors": str(sum(c.status is Status.ERROR for c in result.checks)),
        "skipped": str(sum(c.status is Status.SKIPPED for c in result.checks)),
        "time": f"{result.seconds.get('total', sum(result.seconds.values())):.3f}",
    })
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", {"classname": "repcurate.check", "name": c.id,
                                                 "time": f"{result.seconds.get(c.id, 0.0):.3f}"})
        shown = {k: v for k, v in c.details.items() if k not in PLOT_ONLY_DETAILS}
        body = json.dumps(shown, indent=1, sort_keys=True, default=str)[:20000]
        if is_failure(c.status):
            element = ET.SubElement(case, "failure", {"message": c.message, "type": c.status.value})
            element.text = body
        elif c.status is Status.ERROR:
            ET.SubElement(case, "error", {"message": c.message, "type": "error"}).text = body
        elif c.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", {"message": c.message})
        ET.SubElement(case, "system-out").text = f"{c.status.value.upper()}: {c.message}"
    root = ET.Element("testsuites", {"name": "repcurate check"})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_markdown(result: SuiteResult, *, fail_on: str = "fail") -> str:
    lines = [f"## repcurate check: **{result.verdict.upper()}**", "", "| check | status | value | message |",
             "|---|---|---|---|"]
    for c in result.checks:
        message = c.message.replace("|", "\\|")
        lines.append(f"| `{c.id}` | {_MARK[c.status.value]} | {_value(c.value)} | {message} |")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[..., str]] = {"text": render_text, "json": render_json, "junit": render_junit,
                                            "markdown": render_markdown}
