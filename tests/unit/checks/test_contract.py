"""Contract of every registered check (sklearn's estimator_checks, for checks): its registration, parameters and
its optional HTML-report figure (the report asks the check; it never switches on check ids)."""
from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest

from repcurate.checks import registry
from repcurate.checks.base import Check, Measurement, ReportInputs, Status
from repcurate.report import html

MEMBERS = list(registry.REGISTRY)
NO_INPUTS = ReportInputs(manifest={"samples": [], "root": "."}, tensors=lambda: np.zeros((0, 1, 2, 2), np.float32))


@pytest.mark.parametrize("check_id", MEMBERS)
def test_every_check_is_registered_under_its_snake_case_id(check_id: str) -> None:
    check = registry.get(check_id)
    assert inspect.isclass(check) and issubclass(check, Check) and check.id == check_id
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", check_id)
    assert isinstance(check.description, str) and check.description.strip()
    json.dumps(check.defaults, allow_nan=False)
    assert check.defaults == {name: p.default for name, p in check.parameters.items()}


@pytest.mark.parametrize("check_id", MEMBERS)
def test_every_checks_report_figure_is_optional_and_safe_on_an_empty_entry(check_id: str) -> None:
    check = registry.get(check_id)
    assert check.report_panel is None or re.fullmatch(r"[a-z][a-z0-9_]*", check.report_panel)
    if check.report_panel is None:
        assert check.report_view.__func__ is Check.report_view.__func__  # type: ignore[attr-defined]
    for entry in ({"id": check_id, "status": "pass", "details": {}}, {"id": check_id, "status": "fail"}):
        assert check.report_view(entry, NO_INPUTS) is None


def test_panels_are_distinct_and_the_report_has_no_switch_on_check_ids() -> None:
    panels = [c.report_panel for c in registry.registered() if c.report_panel is not None]
    assert len(panels) == len(set(panels)) >= 3
    source = inspect.getsource(html)
    assert not any(re.search(rf'==\s*"{check_id}"', source) for check_id in MEMBERS)


class _PlantedCheck(Check):
    id = "planted_for_contract_test"
    description = "passes with a fixed value"

    def measure(self, ctx, params):
        return Measurement(1.0, "ok")


def test_a_registered_check_runs_in_the_suite_and_a_taken_id_is_refused() -> None:
    registry.register(_PlantedCheck)
    try:
        assert registry.check_ids()[-1] == _PlantedCheck.id and _PlantedCheck in registry.registered()
        assert _PlantedCheck().run(None, {}).status is Status.PASS
        with pytest.raises(ValueError, match="already registered"):
            registry.register(type("Other", (_PlantedCheck,), {}))
    finally:
        del registry.REGISTRY[_PlantedCheck.id]
    with pytest.raises(ValueError, match="did you mean 'set_size'"):
        registry.get("set_sise")
