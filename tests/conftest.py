"""Shared fixtures: real image folders written to tmp_path from scikit-learn's digits."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Keep TensorFlow quiet and deterministic-ish on CPU for every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``repcurate`` console command (falls back to ``python -m repcurate``)."""
    exe = Path(sys.executable).parent / "repcurate"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "repcurate"]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(command + list(args), capture_output=True, text=True, cwd=cwd, env=full_env, timeout=900)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache_dir(tmp_path_factory):
    """Every test process, and every CLI it starts, caches embeddings and eval tensors in a session folder,
    never in the user's ``~/.cache/repcurate`` (a test that wants the default location sets its own env)."""
    saved = os.environ.get("REPCURATE_CACHE_DIR")
    os.environ["REPCURATE_CACHE_DIR"] = str(tmp_path_factory.mktemp("repcurate_cache"))
    yield
    if saved is None:
        os.environ.pop("REPCURATE_CACHE_DIR", None)
    else:
        os.environ["REPCURATE_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def report_project(tmp_path_factory):
    """The report tests' digits project (trained CNN, built set, real check JSON), built once per session."""
    from tests.unit.report.report_testdata import ReportProject

    return ReportProject(tmp_path_factory.mktemp("report_project"))


@pytest.fixture(scope="module")
def ray_cluster():
    """``ray.init(num_cpus=2)`` (no dashboard, worker logs not echoed); skipped when Ray Data cannot be imported.
    Yields the cluster's address, so CLI subprocesses can join it with ``--ray-address``."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data", exc_type=ImportError)  # also a pyarrow that refuses this numpy
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


#: Pillow's own ``Image.open``, taken before any test can import Ultralytics (which replaces it on import).
from PIL import Image as _Image  # noqa: E402

PILLOW_OPEN = _Image.open


@pytest.fixture(autouse=True)
def pillow_open_unpatched():
    """Importing Ultralytics replaces ``PIL.Image.open`` (its HEIF fallback tries to pip-install a plugin on any
    unidentifiable file); repcurate undoes that when it imports Ultralytics itself, and every test starts and ends
    with Pillow's own opener, whatever a fixture imported, so tests see Pillow's errors."""
    _Image.open = PILLOW_OPEN
    yield
    _Image.open = PILLOW_OPEN


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MB tmpfs (mounted as root; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
