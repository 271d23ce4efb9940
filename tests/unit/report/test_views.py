"""One renderer per (result kind, format) and one gate name, ``passed()``, for every command's result."""
from __future__ import annotations

import json

import pytest

from repcurate.checks.base import CheckResult, Status
from repcurate.checks.suite import SuiteResult
from repcurate.commands.confirm import ConfirmResult
from repcurate.commands.doctor.result import DoctorResult
from repcurate.quantize.mct import MCTSettings
from repcurate.report import views


def _results() -> dict[str, object]:
    suite = SuiteResult([CheckResult("set_size", Status.WARN, 20, "small set")])
    arms = [{"set": s, "bias_correction": True, "metric": {"cosine": v, "sqnr_db": 30.0}, "ptq_seconds": 1.0}
            for s, v in (("curated", 0.999), ("random-0", 0.99))]
    confirm = ConfirmResult(metric="cosine", float={"cosine": 1.0}, arms=arms, settings={"eval_images": 10, "weights_bits": 8})
    doctor = DoctorResult(metric="cosine", float_metric=1.0, baseline=0.98, final=0.995, tolerance=1.0,
                          recommended=MCTSettings(weights_bits=8, tpc="imx500:1.0"), framework="torch")
    return {"check": suite, "confirm": confirm, "doctor": doctor}


@pytest.mark.parametrize("kind", ["build", "check", "confirm", "doctor"])
def test_every_result_kind_renders_text_and_json(kind: str) -> None:
    assert {"text", "json"} <= set(views.formats(kind))


@pytest.mark.parametrize("kind", ["check", "confirm", "doctor"])
def test_every_result_satisfies_the_protocol_and_renders_in_each_of_its_formats(kind: str) -> None:
    result = _results()[kind]
    assert isinstance(result, views.Result) and result.kind == kind
    assert isinstance(result.passed(), bool)
    for fmt in views.formats(kind):
        text = views.render(result, fmt)
        assert text.endswith("\n") and text.strip()
    assert json.loads(views.render(result, "json")) == json.loads(json.dumps(result.to_dict()))


def test_one_gate_name_with_the_old_names_as_aliases() -> None:
    results = _results()
    doctor = results["doctor"]
    assert doctor.passed() is doctor.within_tolerance() is True
    assert results["check"].passed() and not results["check"].passed(fail_on="warn")
    assert results["confirm"].passed()


def test_a_fidelity_confirm_shows_its_units_from_the_task() -> None:
    text = views.render(_results()["confirm"], "text")
    assert text.startswith("cosine on 10 held-out images, MCT, 8-bit weights; float model: 100.00")
    assert "points" in text.split("\n")[4]  # the verdict line: cosine is a fraction shown ×100 in points
