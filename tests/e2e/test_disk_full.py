"""``build`` / ``export`` onto a full disk (a real 1 MB tmpfs) or under a file-size limit (RLIMIT_FSIZE): exit 5 with
one plain line naming the device and the size needed — refused before the embedding when the set's size is known —
never "internal error: OSError [Errno 28]" after all the work, and nothing left on the disk."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from repcurate.example_data import write_digits_folder
from tests.cli_asserts import assert_one_line_error

#: A small CNN on 3 x 64 x 64 inputs: 48 KiB per sample, so a 30-sample set needs ~1.5 MB.
CODE = '''
import numpy as np
import torch
from torch import nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10)).eval()


def preprocess(image):
    return (np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.float32) / 255.0).transpose(2, 0, 1)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("disk_full")
    (work / "code.py").write_text(CODE)
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 4))
    return work


def _build_args(project: Path, out: Path) -> list[str]:
    return ["build", "--train-dir", str(project / "train"), "--out", str(out), "--size", "30", "--no-cache",
            "--model", f"{project / 'code.py'}:make_model", "--preprocess", f"{project / 'code.py'}:preprocess"]


def test_build_onto_a_full_disk_is_refused_before_embedding(project: Path, tiny_disk: Path, cli) -> None:
    result = cli(*_build_args(project, tiny_disk / "set"))
    assert_one_line_error(result, 5, f"no space left on {tiny_disk}", "needed ~1.5 MB", "fix:", "--out")
    assert "internal error" not in result.stderr and "Errno" not in result.stderr
    assert "embedding" not in result.stderr  # refused before the work
    assert list(tiny_disk.iterdir()) == []


def test_export_onto_a_full_disk_is_one_plain_line(project: Path, tiny_disk: Path, cli) -> None:
    built = cli(*_build_args(project, project / "set"), "-q")
    assert built.returncode == 0, built.stderr
    result = cli("export", "--repset", str(project / "set"), "--to", "npz", "--input-name", "x",
                 "--out", str(tiny_disk / "calib"))
    assert_one_line_error(result, 5, f"no space left on {tiny_disk}", "needed ~1.5 MB", "fix:")
    assert list(tiny_disk.iterdir()) == []


def test_build_under_a_file_size_limit_says_so(project: Path, tmp_path: Path) -> None:
    """The free-space probe passes (the disk has room); writing calibration.npz meets RLIMIT_FSIZE (EFBIG)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    exe = Path(sys.executable).parent / "repcurate"
    result = subprocess.run([str(exe), *_build_args(project, tmp_path / "set")], capture_output=True, text=True,
                            timeout=600, preexec_fn=limit, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert_one_line_error(result, 5, "file-size limit", "needed ~1.5 MB", "ulimit -f")
    assert list(tmp_path.iterdir()) == []
