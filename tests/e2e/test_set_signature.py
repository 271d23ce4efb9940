"""Sets you built yourself are trusted without --trust-set: ``build`` signs manifest.json (HMAC-SHA256, a per-user
key in the cache folder, 0600, never in the set); a set signed by another key, or edited since, stays refused."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from repcurate.example_data import write_digits_folder
from tests.cli_asserts import assert_one_line_error

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
def work(tmp_path_factory, cli) -> Path:
    work = tmp_path_factory.mktemp("signature")
    (work / "code.py").write_text(CODE)
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 4))
    write_digits_folder(work / "eval", per_class=dict.fromkeys(range(10), 3), offset=4)
    for name in ("set", "again"):
        built = cli("build", "--train-dir", str(work / "train"), "--out", str(work / name), "--size", "20", "--no-cache",
                    "--model", f"{work / 'code.py'}:make_model", "--preprocess", f"{work / 'code.py'}:preprocess", "-q")
        assert built.returncode == 0, built.stderr
    return work


def _check(cli, work: Path, repset: Path, env: dict[str, str] | None = None):
    return cli("check", "--repset", str(repset), "--eval-dir", str(work / "eval"), "--no-cache",
               "--model", f"{work / 'code.py'}:make_model", env=env)


def test_build_signs_with_a_private_per_user_key_and_manifests_stay_identical(work: Path) -> None:
    key = Path(os.environ["REPCURATE_CACHE_DIR"]) / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32
    for name in ("set", "again"):
        files = {p.name for p in (work / name).iterdir()}
        assert "manifest.sig" in files and "signing.key" not in files
        assert all(key.read_bytes() not in p.read_bytes() for p in (work / name).iterdir())
    assert (work / "set" / "manifest.json").read_bytes() == (work / "again" / "manifest.json").read_bytes()
    assert (work / "set" / "manifest.sig").read_bytes() == (work / "again" / "manifest.sig").read_bytes()


def test_your_own_set_runs_its_recorded_preprocessing_without_trust_set(work: Path, cli) -> None:
    result = _check(cli, work, work / "set")
    assert result.returncode in (0, 1), result.stderr
    assert "built by you (signature verified)" in result.stderr


def test_confirm_trusts_your_own_set_too(work: Path, cli) -> None:
    result = cli("confirm", "--repset", str(work / "set"), "--eval-dir", str(work / "eval"), "--no-cache",
                 "--model", f"{work / 'code.py'}:make_model", "--max-eval", "20", "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    assert "built by you (signature verified)" in result.stderr


def test_an_edited_manifest_is_refused(work: Path, cli, tmp_path: Path) -> None:
    edited = Path(shutil.copytree(work / "set", tmp_path / "edited"))
    manifest = json.loads((edited / "manifest.json").read_text())
    (edited / "manifest.json").write_text(json.dumps(manifest, indent=1))  # same content, other bytes
    assert_one_line_error(_check(cli, work, edited), 2, "preprocessing.spec", "not signed by your key", "--trust-set")


def test_a_set_signed_by_another_user_is_refused(work: Path, cli, tmp_path: Path) -> None:
    other = {"REPCURATE_CACHE_DIR": str(tmp_path / "other-user-cache")}
    assert_one_line_error(_check(cli, work, work / "set", env=other), 2, "not signed by your key")
    assert not (tmp_path / "other-user-cache" / "signing.key").exists()  # checking never makes a key


def test_a_key_others_can_read_is_not_used(work: Path, cli, tmp_path: Path) -> None:
    cache = tmp_path / "loose-cache"
    cache.mkdir()
    shutil.copy(Path(os.environ["REPCURATE_CACHE_DIR"]) / "signing.key", cache / "signing.key")
    os.chmod(cache / "signing.key", 0o644)
    result = _check(cli, work, work / "set", env={"REPCURATE_CACHE_DIR": str(cache)})
    assert result.returncode == 2 and "not used as the set-signing key" in result.stderr
