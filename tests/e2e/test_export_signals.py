"""A real SIGTERM at the exact step between ``export``'s renames (the test-only pause hook of
:mod:`repcurate.io.signals`): nothing is published — a new ``--out`` does not appear, an ``--overwrite``-n one keeps
its old content — and no hidden sibling is left. One arriving after the output is complete keeps it and the exit
line names it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import repcurate
from repcurate.example_data import write_digits_folder

CODE = '''
import numpy as np
import torch
from torch import nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


def preprocess(image):
    return (np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32) / 255.0)[None]
'''


@pytest.fixture(scope="module")
def repset(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("export_signals")
    (work / "code.py").write_text(CODE)
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 3))
    repcurate.build(work / "train", work / "set", size=10, model=f"{work / 'code.py'}:make_model",
                    preprocess=f"{work / 'code.py'}:preprocess", use_cache=False, progress=False)
    return work / "set"


def _export(repset: Path, out: Path, name: str, *extra: str, pause: str | None = None) -> subprocess.CompletedProcess:
    """``repcurate export``; with ``pause``, SIGTERM is sent while it sits at that step."""
    env = {**os.environ}
    if pause is not None:
        env.update(REPCURATE_TEST_PAUSE=pause, REPCURATE_TEST_PAUSE_SECONDS="20")
    command = [str(Path(sys.executable).parent / "repcurate"), "export", "--repset", str(repset), "--to", "npz",
               "--input-name", name, "--out", str(out), *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    if pause is not None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if line.startswith(f"repcurate-test: paused at {pause}"):
                process.send_signal(signal.SIGTERM)
                break
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, "".join(seen) + stderr)


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_sigterm_between_the_renames_of_a_new_export_leaves_nothing(repset: Path, tmp_path: Path) -> None:
    out = tmp_path / "calib"
    result = _export(repset, out, "a", pause="between-renames")
    assert result.returncode == 143, result.stderr
    assert not out.exists() and _siblings(out) == []
    assert "already written" not in result.stderr


def test_sigterm_between_the_renames_of_an_overwrite_keeps_the_old_export(repset: Path, tmp_path: Path) -> None:
    out = tmp_path / "calib"
    assert _export(repset, out, "old").returncode == 0
    before = json.loads((out / "export.json").read_text())
    result = _export(repset, out, "new", "--overwrite", pause="between-renames")
    assert result.returncode == 143, result.stderr
    assert json.loads((out / "export.json").read_text()) == before and before["input_name"] == "old"
    assert _siblings(out) == []


def test_sigterm_after_the_export_is_complete_says_it_was_kept(repset: Path, tmp_path: Path) -> None:
    out = tmp_path / "calib"
    result = _export(repset, out, "a", pause="after-commit")
    assert result.returncode == 143, result.stderr
    assert json.loads((out / "export.json").read_text())["input_name"] == "a"
    assert f"terminated; already written completely and kept: {out}" in result.stderr
    assert _siblings(out) == []
