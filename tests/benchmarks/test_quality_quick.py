"""Smoke test of the quality benchmark: ``benchmarks/quality.py --quick`` runs every arm end to end on
real Fashion-MNIST with real MCT and writes JSON, Markdown and the plot (no assertions on accuracy:
the quick grid is far too small to mean anything)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_file(), reason="needs Debian's dataset-fashion-mnist")
def test_quality_quick_runs_every_arm(tmp_path: Path) -> None:
    out = tmp_path / "results" / "quality.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    arms = {(r["dataset"], r["framework"], r["arm"]) for r in report["runs"]}
    for dataset in ("balanced", "longtail-100"):
        for arm in ("kmeans", "kcenter", "facility-location", "random-0", "random-1", "first-n", "single-class", "random-100"):
            assert (dataset, "torch", arm) in arms
    assert ("balanced", "keras", "kmeans") in arms
    assert {(r["bits"], r["bias_correction"]) for r in report["runs"]} == {(2, True), (2, False)}
    assert all(0.0 <= r["top1"] <= 1.0 for r in report["runs"])
    assert [m["variant"] for m in report["mismatch"]] == ["correct", "unnormalised_0_1", "unnormalised_0_255", "inverted"]
    # the planted mismatches are what `repcurate check` exists for: it must flag every one of them
    for row in report["mismatch"][1:]:
        assert row["check_verdict"] == "fail"
        assert any(f["check"] == "preprocessing_parity" for f in row["flagged"])
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| planted preprocessing |" in out.with_suffix(".md").read_text()
