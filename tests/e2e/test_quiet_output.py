"""Quiet by default: a real 3-arm ``confirm`` of a small CNN prints repcurate's own lines on stderr (one per arm)
and none of MCT's tqdm bars or log lines ("DepthwiseConv2D is not in model."); with -v they show."""
from __future__ import annotations

from pathlib import Path

import pytest

from repcurate.example_data import write_digits_folder

CODE = '''
import numpy as np
import torch
from torch import nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def preprocess(image):
    return (np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32) / 255.0)[None]
'''
MCT_MARKS = ("Statistics Collection", "Calculating quantization parameters", "is not in model", "it/s")


@pytest.fixture(scope="module")
def project(tmp_path_factory, cli) -> Path:
    work = tmp_path_factory.mktemp("quiet")
    (work / "code.py").write_text(CODE)
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 4))
    write_digits_folder(work / "eval", per_class=dict.fromkeys(range(10), 3), offset=4)
    built = cli("build", "--train-dir", str(work / "train"), "--out", str(work / "set"), "--size", "20", "--no-cache",
                "--model", f"{work / 'code.py'}:make_model", "--preprocess", f"{work / 'code.py'}:preprocess", "-q")
    assert built.returncode == 0, built.stderr
    return work


def _confirm(cli, work: Path, *extra: str):
    # 3 arms (curated, one random set, first N), each with bias correction on and off: 6 quantizations
    return cli("confirm", "--repset", str(work / "set"), "--eval-dir", str(work / "eval"), "--no-cache",
               "--model", f"{work / 'code.py'}:make_model", "--random-sets", "1", *extra)


def test_confirm_shows_only_repcurate_lines_by_default(project: Path, cli) -> None:
    result = _confirm(cli, project)
    assert result.returncode in (0, 1), result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith("repcurate: ") for line in lines), result.stderr
    assert not any(mark in result.stderr for mark in MCT_MARKS), result.stderr
    assert sum("PTQ " in line for line in lines) == 6  # one progress line per arm and setting
    assert len(lines) <= 12, result.stderr


def test_verbose_shows_the_third_party_output(project: Path, cli) -> None:
    result = _confirm(cli, project, "-v")
    assert result.returncode in (0, 1), result.stderr
    assert any(mark in result.stderr for mark in MCT_MARKS[:3]), result.stderr
