"""Output guards: outputs never overlap inputs, --overwrite replaces only repcurate's own output, stale
staging folders of dead runs are cleared, signals are held while an output is swapped into place."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from repcurate.errors import Terminated, UsageError
from repcurate.io.atomic import (
    clear_stale_staging,
    deferred_signals,
    json_bytes,
    staging_prefix,
    write_directory,
    write_text_atomic,
)
from repcurate.io.outputs import (
    code_file,
    ensure_writable_target,
    foreign_entry,
    refuse_output_file,
    refuse_overlap,
)

OWN_MANIFEST = json_bytes({"tool": {"name": "repcurate"}})


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("relation", ["same", "parent", "child"])
def test_refuse_overlap_in_every_direction(tmp_path: Path, relation: str) -> None:
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    out = {"same": train, "parent": tmp_path / "data", "child": train / "cls"}[relation]
    with pytest.raises(UsageError, match="training folder") as info:
        refuse_overlap(out, {"training folder": train})
    assert info.value.exit_code == 2
    refuse_overlap(tmp_path / "elsewhere", {"training folder": train, "unused": None})


def test_refuse_overlap_resolves_symlinks(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    (tmp_path / "alias").symlink_to(train, target_is_directory=True)
    with pytest.raises(UsageError):
        refuse_overlap(tmp_path / "alias", {"training folder": train})
    with pytest.raises(UsageError):
        refuse_overlap(tmp_path / "alias" / "sub", {"training folder": train})


def test_ensure_writable_target_refuses_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "old-set"
    work.mkdir()
    (work / "manifest.json").write_bytes(OWN_MANIFEST)
    monkeypatch.chdir(work)
    for out in (Path("."), tmp_path):
        with pytest.raises(UsageError, match="current directory"):
            ensure_writable_target(out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-set"]


def test_ensure_writable_target_probes_the_parent(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        ensure_writable_target(tmp_path / "a-file" / "out", overwrite=False)
    # /sys refuses new entries even to root: the probe tries, it does not guess from permission bits.
    with pytest.raises(UsageError, match="cannot write in /sys"):
        ensure_writable_target(Path("/sys/repcurate-out"), overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # the probe leaves nothing


def test_foreign_entry_names_what_is_not_ours(tmp_path: Path) -> None:
    assert foreign_entry(tmp_path) is None
    (tmp_path / "manifest.json").write_bytes(OWN_MANIFEST)
    (tmp_path / "calibration.npz").write_bytes(b"x")
    assert foreign_entry(tmp_path) is None
    (tmp_path / "sub").mkdir()
    assert foreign_entry(tmp_path) == "sub is not a file repcurate writes"
    (tmp_path / "sub").rmdir()
    (tmp_path / "manifest.json").write_text("[]")
    assert foreign_entry(tmp_path) == "it holds no repcurate manifest.json or export.json"


def test_refuse_output_file(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text("x = 1\n")
    (tmp_path / "eval").mkdir()
    refuse_output_file(None)
    refuse_output_file(tmp_path / "report.json", input_files=[model], input_dirs={"eval folder": tmp_path / "eval"})
    with pytest.raises(UsageError, match="is an input"):
        refuse_output_file(model, input_files=[model, None])
    with pytest.raises(UsageError, match="inside the eval folder"):
        refuse_output_file(tmp_path / "eval" / "0" / "img.png", input_dirs={"eval folder": tmp_path / "eval"})
    with pytest.raises(UsageError, match="is a directory"):
        refuse_output_file(tmp_path / "eval")
    assert model.read_text() == "x = 1\n"


def test_code_file_of_specs() -> None:
    assert code_file("models/net.py:make") == Path("models/net.py")
    assert code_file("net.keras") == Path("net.keras")
    assert code_file("torchvision.models:resnet18") is None
    assert code_file("efficientnet-lite0") is None
    assert code_file(None) is None


def test_stale_staging_of_dead_runs_is_cleared_and_live_ones_kept(tmp_path: Path) -> None:
    out = tmp_path / "set"
    dead = staging_prefix("set", "tmp").replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    stale_dir = tmp_path / f"{dead}abc123"
    stale_dir.mkdir()
    (stale_dir / "calibration.npz").write_bytes(b"x" * 1000)
    stale_file = tmp_path / f".report.html.tmp-{dead.split('.tmp-')[1]}zz9"
    stale_file.write_text("half a report")
    live = tmp_path / f"{staging_prefix('set', 'tmp')}live01"
    live.mkdir()
    other_host = tmp_path / f".set.tmp-00000000-{dead_pid()}-x1"
    other_host.mkdir()
    removed = clear_stale_staging(out)
    assert removed == [stale_dir]
    assert not stale_dir.exists() and live.exists() and other_host.exists()
    write_text_atomic(tmp_path / "report.html", "<html></html>")
    assert not stale_file.exists()


def test_a_moved_aside_output_is_restored_when_its_replacement_never_arrived(tmp_path: Path) -> None:
    out = tmp_path / "set"
    dead = staging_prefix("set", "old").replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    retired = tmp_path / f"{dead}q1w2e3"
    (retired / "set").mkdir(parents=True)
    (retired / "set" / "manifest.json").write_bytes(OWN_MANIFEST)
    clear_stale_staging(out)
    assert (out / "manifest.json").read_bytes() == OWN_MANIFEST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_deferred_signals_finish_the_block_then_raise() -> None:
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(Terminated()))
    steps: list[str] = []
    try:
        with pytest.raises(Terminated):
            with deferred_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("after the signal")
        assert steps == ["after the signal"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_terminated_write_leaves_nothing(tmp_path: Path) -> None:
    def terminated(path: Path) -> None:
        path.write_bytes(b"half")
        raise Terminated()

    with pytest.raises(Terminated):
        write_directory(tmp_path / "set", {"manifest.json": OWN_MANIFEST, "calibration.npz": terminated}, overwrite=False)
    assert list(tmp_path.iterdir()) == []
