"""The data-loss guards through the real CLI, on copies in tmp_path: an output never overwrites or deletes an
input, --overwrite replaces only repcurate's own output, signals leave no partial output and no debris."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repcurate.example_data import write_digits_folder
from tests.cli_asserts import assert_one_line_error

#: An untrained, seeded model whose preprocessing makes large tensors, so the write stage takes a moment.
BIG_TENSOR_MODEL = '''
import numpy as np
import torch

SIZE = 224


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=4)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


def make_model():
    return Net().eval()


def preprocess(image):
    return np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=np.float32).transpose(2, 0, 1) / 255.0
'''


def tree_digest(root: Path) -> dict[str, str]:
    """Every file below ``root`` with its sha256 (what must survive a refused command unchanged)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def train(tmp_path: Path) -> Path:
    write_digits_folder(tmp_path / "train", per_class={0: 3, 1: 3, 2: 3})
    return tmp_path / "train"


@pytest.mark.parametrize("where", ["train", "parent", "class", "symlink"])
def test_build_never_overwrites_the_training_folder(tmp_path: Path, train: Path, cli, where: str) -> None:
    (tmp_path / "alias").symlink_to(train, target_is_directory=True)
    out = {"train": train, "parent": tmp_path, "class": train / "1", "symlink": tmp_path / "alias"}[where]
    before = tree_digest(tmp_path)
    result = cli("build", "--train-dir", str(train), "--out", str(out), "--overwrite", "--no-cache")
    assert_one_line_error(result, 2, "training folder", "fix:")
    assert "--overwrite" not in result.stderr.split("fix:")[1]
    assert tree_digest(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias", "train"]


def test_out_equal_to_the_training_folder_does_not_suggest_overwrite(train: Path, cli) -> None:
    result = cli("build", "--train-dir", str(train), "--out", str(train), "--no-cache")
    assert_one_line_error(result, 2, "training folder")
    assert "pass --overwrite" not in result.stderr


def test_build_never_overwrites_match_dir_or_listed_images(tmp_path: Path, train: Path, cli) -> None:
    write_digits_folder(tmp_path / "device", per_class={3: 4})
    before = tree_digest(tmp_path)
    result = cli("build", "--train-dir", str(train), "--out", str(tmp_path / "device"), "--match-dir",
                 str(tmp_path / "device"), "--overwrite", "--no-cache")
    assert_one_line_error(result, 2, "--match-dir folder")
    lists = tmp_path / "lists"
    lists.mkdir()
    rows = [f"{p},{p.parent.name}" for p in sorted((tmp_path / "device").rglob("*.png"))]
    (lists / "train.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    before = tree_digest(tmp_path)
    # A folder of listed images is an input (the data the list reads), and so is the list's own folder.
    for out, needle in ((tmp_path / "device", "training folder"), (lists, "list file")):
        result = cli("build", "--train-dir", str(lists / "train.csv"), "--out", str(out), "--overwrite", "--no-cache")
        assert_one_line_error(result, 2, needle)
    assert tree_digest(tmp_path) == before


def test_overwrite_replaces_only_repcurate_output(tmp_path: Path, train: Path, cli) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"precious bytes")
    result = cli("build", "--train-dir", str(train), "--out", str(photos), "--overwrite", "--no-cache")
    assert_one_line_error(result, 2, "not written by repcurate", "no repcurate manifest.json")
    assert (photos / "holiday.jpg").read_bytes() == b"precious bytes"


def test_out_dot_over_an_old_set_is_refused_without_debris(tmp_path: Path, train: Path, cli) -> None:
    old = tmp_path / "old-set"
    old.mkdir()
    (old / "manifest.json").write_text('{"tool": {"name": "repcurate"}}')
    result = cli("build", "--train-dir", str(train), "--out", ".", "--overwrite", "--no-cache", cwd=old)
    assert_one_line_error(result, 2, "current directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-set", "train"]
    assert [p.name for p in old.iterdir()] == ["manifest.json"]


def test_unwritable_out_parent_is_refused_before_any_work(tmp_path: Path, train: Path, cli) -> None:
    cache = tmp_path / "cache"
    result = cli("build", "--train-dir", str(train), "--out", "/sys/repcurate-test/set", "--cache-dir", str(cache))
    assert_one_line_error(result, 2, "cannot write in /sys", "fix:")
    assert not cache.exists()  # refused before embedding (which creates the cache)
    (tmp_path / "a-file").write_text("x")
    result = cli("build", "--train-dir", str(train), "--out", str(tmp_path / "a-file" / "set"), "--no-cache")
    assert_one_line_error(result, 2, "not a directory")


@pytest.mark.parametrize("command", ["check", "confirm", "doctor"])
def test_reports_never_overwrite_inputs(tmp_path: Path, train: Path, cli, command: str) -> None:
    write_digits_folder(tmp_path / "eval", per_class={0: 2, 1: 2})
    repset = tmp_path / "repset"
    repset.mkdir()
    (repset / "manifest.json").write_text('{"tool": {"name": "repcurate"}}')
    model = tmp_path / "model.py"
    model.write_text(BIG_TENSOR_MODEL)
    extra = [] if command == "check" else ["--model", f"{model}:make_model"]
    base = [command, "--repset", str(repset), "--eval-dir", str(tmp_path / "eval"), *extra]
    before = tree_digest(tmp_path)
    for option, target, needle in (("--output", tmp_path / "eval" / "0" / "new.json", "inside the eval folder"),
                                   ("--output", repset / "manifest.json", "is an input"),
                                   ("--report", tmp_path / "eval" / "r.html", "inside the eval folder"),
                                   ("--output", model, "is an input")):
        if command == "check" and target == model:
            continue
        result = cli(*base, option, str(target))
        assert_one_line_error(result, 2, option, needle)
    assert tree_digest(tmp_path) == before


def test_confirm_export_never_lands_in_the_eval_folder(tmp_path: Path, cli) -> None:
    write_digits_folder(tmp_path / "eval", per_class={0: 2, 1: 2})
    before = tree_digest(tmp_path)
    for export in (tmp_path / "eval", tmp_path):
        result = cli("confirm", "--repset", str(tmp_path / "missing-set"), "--model", "efficientnet-lite0",
                     "--eval-dir", str(tmp_path / "eval"), "--export", str(export), "--overwrite")
        assert_one_line_error(result, 2, "--export", "never writes over its inputs")
    assert tree_digest(tmp_path) == before


def test_report_out_never_overwrites_the_set(tmp_path: Path, cli) -> None:
    repset = tmp_path / "repset"
    repset.mkdir()
    (repset / "manifest.json").write_text('{"tool": {"name": "repcurate"}}')
    result = cli("report", "--repset", str(repset), "--out", str(repset / "manifest.json"))
    assert_one_line_error(result, 2, "--out", "is an input")
    assert (repset / "manifest.json").read_text() == '{"tool": {"name": "repcurate"}}'


def _start_build(tmp_path: Path, train: Path, out: Path) -> subprocess.Popen:
    model = tmp_path / "big_model.py"
    if not model.exists():
        model.write_text(BIG_TENSOR_MODEL)
    exe = Path(sys.executable).parent / "repcurate"
    return subprocess.Popen([str(exe), "build", "--train-dir", str(train), "--out", str(out), "--size", "200",
                             "--model", f"{model}:make_model", "--preprocess", f"{model}:preprocess", "--no-cache",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_during_write(process: subprocess.Popen, parent: Path, signum: int) -> bool:
    """Send ``signum`` as soon as the hidden staging folder appears; False if the run ended first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.name.startswith(".set.tmp-") for p in parent.iterdir()):
            process.send_signal(signum)
            return True
        time.sleep(0.002)
    return False


@pytest.fixture()
def big_train(tmp_path: Path) -> Path:
    write_digits_folder(tmp_path / "train", per_class=dict.fromkeys(range(10), 25))
    return tmp_path / "train"


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_the_write_leaves_no_output_and_no_debris(tmp_path: Path, big_train: Path,
                                                                 signum: int, code: int, word: str) -> None:
    process = _start_build(tmp_path, big_train, tmp_path / "set")
    hit = _signal_during_write(process, tmp_path, signum)
    _, stderr = process.communicate(timeout=300)
    assert hit, stderr
    assert process.returncode == code, stderr
    assert f"repcurate: {word}" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big_model.py", "train"]


@pytest.mark.slow
def test_debris_of_a_killed_run_is_cleared_by_the_next(tmp_path: Path, big_train: Path, cli) -> None:
    process = _start_build(tmp_path, big_train, tmp_path / "set")
    hit = _signal_during_write(process, tmp_path, signal.SIGKILL)
    process.communicate(timeout=300)
    assert hit and process.returncode == -signal.SIGKILL
    debris = [p for p in tmp_path.iterdir() if p.name.startswith(".set.tmp-")]
    assert debris  # what SIGKILL leaves ...
    rerun = _start_build(tmp_path, big_train, tmp_path / "set")
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big_model.py", "set", "train"]  # ... the next run removes


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (Python installs none of its own: repcurate's is the first)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(line for line in status if line.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


def test_an_early_interrupt_shows_no_traceback(tmp_path: Path, train: Path) -> None:
    """From the moment repcurate's code runs (its first statement installs the handlers) through the imports
    and set-up, a Ctrl-C ends the command with exit 130 and no traceback. (Before that, the interpreter is
    still starting: no Python code can act there.)"""
    exe = Path(sys.executable).parent / "repcurate"
    for delay in (0.0, 0.05, 0.2, 0.5, 1.0):
        process = subprocess.Popen([str(exe), "build", "--train-dir", str(train), "--out", str(tmp_path / "set"),
                                    "--no-cache"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        while not _catches_sigterm(process.pid) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stderr, (delay, stderr)
        assert process.returncode in (130, -signal.SIGINT), (delay, process.returncode, stderr)
        assert not (tmp_path / "set").exists()
