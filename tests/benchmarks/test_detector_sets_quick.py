"""Smoke test of the detector benchmark: ``benchmarks/detector_sets.py --quick`` builds the curated sets, draws
every baseline arm, quantizes each with real MCT and scores the bundled detector (pycocotools mAP) and
segmenter (mIoU) on generated composites, and writes the JSON and the Markdown table (no assertions on which
arm wins: the quick grid is far too small to mean anything)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "detector_sets.py"
FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_file(), reason="needs Debian's dataset-fashion-mnist")
def test_detector_sets_quick_runs_every_arm(tmp_path: Path) -> None:
    out = tmp_path / "results" / "detector_sets.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--jobs", "1", "--out", str(out),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    arms = {"curated", "random-0", "random-1", "first-n", "one-class"}
    runs = {(r["subject"], r["arm"], r["bits"], r["bias_correction"]) for r in report["runs"]}
    assert runs == {("detector", a, 8, bc) for a in arms for bc in (True, False)} | {("segmenter", a, 8, True) for a in arms}
    for row in report["runs"]:
        metrics = ("map", "map50") if row["subject"] == "detector" else ("miou",)
        assert all(0.0 <= row[m] <= 1.0 for m in metrics) and row["images"] == 8
    # the quantized detector still detects: far above zero, not above what the float model scores by much
    detector = [r["map50"] for r in report["runs"] if r["subject"] == "detector"]
    assert min(detector) > 0.2 and max(detector) < report["float"]["detector"]["map50"] + 0.05
    # the one-class arm holds objects of the head class only; the curated set covers every class
    head = report["one_class"]["detector"]["head_class"]
    assert set(report["arms"]["detector-8-one-class"]["instances"]) == {str(head), "background_images"}
    assert {str(c) for c in range(6)} <= set(report["arms"]["detector-8-curated"]["instances"])
    for entry in report["summary"]:
        for metric in ("map", "map50") if entry["subject"] == "detector" else ("miou",):
            cell = entry[metric]
            assert cell["outcome"] in {"helped", "no difference", "hurt"} and cell["random_runs"] == 2
            assert cell["random_min"] <= cell["random_mean"] <= cell["random_max"]
    table = out.with_suffix(".md").read_text()
    assert "| N | bits | bc | mAP@0.5:0.95 curated |" in table and "| N | bits | bc | mIoU curated |" in table
