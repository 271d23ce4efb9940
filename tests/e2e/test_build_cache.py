"""`repcurate build` with a damaged, unusable or shared embedding cache: always exit 0, one warning line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from repcurate.example_data import write_digits_folder
from tests.e2e.test_cli_options import TINY_MODEL


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cache_project")
    write_digits_folder(work / "train", per_class={d: 6 for d in range(3)})
    (work / "tiny_model.py").write_text(TINY_MODEL)
    return work


def _args(project: Path, out: Path, cache: Path) -> list[str]:
    model = project / "tiny_model.py"
    return ["build", "--train-dir", str(project / "train"), "--out", str(out), "--size", "6", "--cache-dir", str(cache),
            "--model", f"{model}:make_model", "--preprocess", f"{model}:preprocess"]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "embedding cache" in line]


def test_corrupt_cache_is_moved_aside_and_the_build_succeeds(project, tmp_path, cli) -> None:
    cache = tmp_path / "cache"
    first = cli(*_args(project, tmp_path / "a", cache))
    assert first.returncode == 0, first.stderr
    database = next(cache.glob("emb-*.sqlite"))
    database.write_bytes(database.read_bytes()[:200])  # truncated
    for side in cache.glob("emb-*.sqlite-*"):
        side.unlink()
    seen = {}
    for attempt in ("b", "c"):  # the run after that finds a healthy cache: no warning
        result = cli(*_args(project, tmp_path / attempt, cache))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        seen[attempt] = _warnings(result.stderr)
    assert len(seen["b"]) == 1 and seen["c"] == [], seen
    assert f"embedding cache {database} is corrupt" in seen["b"][0] and "moved it to" in seen["b"][0]
    aside = sorted(cache.glob("emb-*.sqlite.corrupt-*"))
    assert [p.read_bytes()[:16] for p in aside if not p.name.endswith(("-wal", "-shm"))] == [b"SQLite format 3\x00"]
    assert str(aside[0]) in seen["b"][0]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "c" / "manifest.json").read_bytes()


def test_cache_dir_that_is_a_file_runs_without_the_cache(project, tmp_path, cli) -> None:
    (tmp_path / "cache").write_text("a file, not a folder")
    result = cli(*_args(project, tmp_path / "out", tmp_path / "cache"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    [warning] = _warnings(result.stderr)
    assert "unusable" in warning and warning.endswith("running without the cache")
    assert (tmp_path / "cache").read_text() == "a file, not a folder"
    assert (tmp_path / "out" / "manifest.json").exists()


def test_concurrent_builds_share_one_cache(project, tmp_path) -> None:
    exe = Path(sys.executable).parent / "repcurate"
    cache = tmp_path / "cache"
    runs = [subprocess.Popen([str(exe), *_args(project, tmp_path / name, cache)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy()) for name in ("x", "y")]
    results = [(run.wait(timeout=600), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert all(code == 0 for code, _ in results), results
    assert not any(_warnings(err) for _, err in results), results
    assert (tmp_path / "x" / "manifest.json").read_bytes() == (tmp_path / "y" / "manifest.json").read_bytes()
    assert not list(cache.glob("*.corrupt-*"))
