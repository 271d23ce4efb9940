"""User code that raises ``SystemExit`` / ``KeyboardInterrupt`` itself (a preprocessing, a model factory) is that code
failing — a ``preprocess_error`` skip or exit 3 — never a silent exit 0; a real Ctrl-C still stops the run (130)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repcurate.example_data import write_digits_folder
from tests.cli_asserts import assert_one_line_error

CODE = '''
import hashlib, pathlib, time
import numpy as np
import torch
from torch import nn

PROBE_SIZES = {(53, 37), (48, 64)}  # repcurate's fingerprint probe images


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


def _sample(image):
    return (np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32) / 255.0)[None]


def exit_on_odd(image):
    """SystemExit(0) on about half of the training images (never on the probe images)."""
    if image.size not in PROBE_SIZES and hashlib.md5(image.tobytes()).digest()[0] % 2:
        raise SystemExit(0)
    return _sample(image)


def interrupt_on_odd(image):
    if image.size not in PROBE_SIZES and hashlib.md5(image.tobytes()).digest()[0] % 2:
        raise KeyboardInterrupt
    return _sample(image)


def exit_always(image):
    raise SystemExit(0)


def exiting_factory():
    raise SystemExit(0)


def slow(image):
    if image.size not in PROBE_SIZES:
        pathlib.Path(__file__).with_name("STARTED").touch()
        time.sleep(0.2)
    return _sample(image)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("user_exits")
    (work / "code.py").write_text(CODE)
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 6))
    return work


def _build(cli, work: Path, out: str, preprocess: str, model: str = "make_model"):
    return cli("build", "--train-dir", str(work / "train"), "--out", str(work / out), "--size", "10", "--no-cache",
               "--model", f"{work / 'code.py'}:{model}", "--preprocess", f"{work / 'code.py'}:{preprocess}", "-q")


@pytest.mark.parametrize("preprocess", ["exit_on_odd", "interrupt_on_odd"])
def test_preprocess_raising_systemexit_or_keyboardinterrupt_is_a_skip(project: Path, cli, preprocess: str) -> None:
    result = _build(cli, project, f"set-{preprocess}", preprocess)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((project / f"set-{preprocess}" / "manifest.json").read_text())
    reasons = {entry["reason"] for entry in manifest["skipped"]}
    assert reasons == {"preprocess_error"}, manifest["skipped"][:3]
    raised = "SystemExit" if preprocess == "exit_on_odd" else "KeyboardInterrupt"
    assert all(raised in entry["detail"] for entry in manifest["skipped"])
    assert len(manifest["samples"]) == 10


@pytest.mark.parametrize(("preprocess", "model", "needle"), [
    ("exit_always", "make_model", "SystemExit"),
    ("exit_on_odd", "exiting_factory", "SystemExit"),
], ids=["probe", "model-factory"])
def test_user_code_exiting_up_front_is_bad_input(project: Path, cli, preprocess: str, model: str, needle: str) -> None:
    result = _build(cli, project, f"set-{model}-{preprocess}", preprocess, model)
    assert_one_line_error(result, 3, needle)
    assert not (project / f"set-{model}-{preprocess}").exists()


def test_a_real_ctrl_c_during_preprocessing_still_stops_with_130(project: Path) -> None:
    started = project / "STARTED"
    started.unlink(missing_ok=True)
    exe = Path(sys.executable).parent / "repcurate"
    process = subprocess.Popen(
        [str(exe), "build", "--train-dir", str(project / "train"), "--out", str(project / "set-ctrl-c"), "--size", "10",
         "--no-cache", "--model", f"{project / 'code.py'}:make_model", "--preprocess", f"{project / 'code.py'}:slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), process.communicate()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not (project / "set-ctrl-c").exists()
