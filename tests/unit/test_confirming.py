"""confirm's result: arms per point of the quantizer's settings grid, summary rows keyed by that point."""
from __future__ import annotations

from repcurate.confirming import ConfirmResult


def _arm(name: str, bc: bool, top1: float) -> dict:
    return {"set": name, "bias_correction": bc, "metric": {"top1": top1}, "ptq_seconds": 1.0,
            "settings": {"bias_correction": bc}}


def test_summary_has_one_row_per_grid_point_on_before_off_whatever_the_arm_order():
    arms = [_arm("curated", False, 0.9), _arm("random-0", False, 0.8), _arm("curated", True, 0.95),
            _arm("random-0", True, 0.85)]
    rows = ConfirmResult(metric="top1", float={"top1": 0.97}, arms=arms).summary()
    assert [(r["bias_correction"], r["curated"], r["random_mean"]) for r in rows] == [(True, 0.95, 0.85), (False, 0.9, 0.8)]
    assert list(rows[0])[:2] == ["bias_correction", "curated"]  # the JSON keeps its keys and their order
