"""Smoke test of the speed benchmark: ``benchmarks/speed.py --quick`` runs end to end and writes every
section (no assertions on the numbers: they depend on the machine and its load)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "speed.py"


@pytest.mark.slow
def test_speed_quick_runs_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results" / "speed.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert set(report["sections"]) == {"embed", "cache", "select", "checks"}
    assert {"start", "embed", "cache", "select", "checks", "end"} <= set(report["loadavg"])
    embed, cache = report["sections"]["embed"], report["sections"]["cache"]
    assert embed["forward"]["images_per_second"] > 0 and embed["ratio_end_to_end"] > 0
    assert cache["warm"]["embedded"] == 0 and cache["warm"]["cache_hits"] == embed["images"]
    select = report["sections"]["select"]
    assert {(r["impl"], r["rows"]) for r in select["runs"]} == {
        (impl, rows) for impl in ("repcurate", "sklearn") for rows in report["sizes"]["select_rows"]}
    assert all("seconds" in r and r["peak_rss_mib"] > 0 for r in select["runs"])
    assert select["exponent"]["repcurate"] is not None
    assert Path(select["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checks = report["sections"]["checks"]
    assert len(checks["wall_seconds"]) == report["sizes"]["check_runs"] and checks["verdict"] in {"pass", "warn", "fail"}
    assert {t["part"] for t in report["targets"]} == {"embed", "cache", "select", "checks"}
    assert json.loads(done.stdout) == report["targets"]
