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
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(3), 6))
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


def _tensor_entry(cache: Path) -> Path:
    [array] = list(cache.glob("tensors-*/*.npy"))  # the chosen files' tensors of the one build
    return array


def test_a_tampered_tensor_entry_is_decoded_again_and_the_set_equals_a_clean_build(project, tmp_path, cli) -> None:
    """Values of the build's cached tensors overwritten in place (same header, same size): the rebuild warns once,
    decodes the chosen files again and writes the clean build's calibration.npz and manifest."""
    from tests.unit.embed.test_cache_integrity import tamper_in_place

    cache = tmp_path / "cache"
    clean = cli(*_args(project, tmp_path / "clean", cache))
    assert clean.returncode == 0, clean.stderr
    array = _tensor_entry(cache)
    tamper_in_place(array)
    rebuilt = cli(*_args(project, tmp_path / "rebuilt", cache))
    assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.stderr, rebuilt.stderr
    damaged = [line for line in rebuilt.stderr.splitlines() if "tensor cache entry" in line]
    assert len(damaged) == 1 and str(array) in damaged[0] and "does not match its checksum" in damaged[0], rebuilt.stderr
    for name in ("calibration.npz", "manifest.json"):
        assert (tmp_path / "rebuilt" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name


def test_a_fifo_in_place_of_a_tensor_entry_does_not_hang_the_build(project, tmp_path) -> None:
    cache = tmp_path / "cache"
    exe = Path(sys.executable).parent / "repcurate"
    first = subprocess.run([str(exe), *_args(project, tmp_path / "a", cache)], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    array = _tensor_entry(cache)
    array.unlink()
    os.mkfifo(array)
    try:
        again = subprocess.run([str(exe), *_args(project, tmp_path / "b", cache)], capture_output=True, text=True,
                               timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(f"build hung on the FIFO {array}")
    assert again.returncode == 0, again.stderr
    assert f"tensor cache entry {array} is damaged (not a regular file)" in again.stderr
    assert (tmp_path / "b" / "calibration.npz").read_bytes() == (tmp_path / "a" / "calibration.npz").read_bytes()
    assert array.is_file()
