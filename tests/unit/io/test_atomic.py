"""Atomic directory writes, deterministic npz, stable JSON."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from repcurate.errors import UsageError
from repcurate.io.atomic import ZIP_EPOCH, ensure_writable_target, json_bytes, write_directory, write_npz

#: What makes a directory repcurate's own output: a manifest naming the tool.
OWN_MANIFEST = json_bytes({"tool": {"name": "repcurate", "version": "0"}})


class WriterFailed(RuntimeError):
    pass


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_writes_bytes_and_writer_outputs(tmp_path: Path) -> None:
    out = tmp_path / "parent" / "set"

    def writer(path: Path) -> None:
        path.write_text("from a writer\n")

    write_directory(out, {"a.bin": b"\x00\x01", "b.txt": writer}, overwrite=False)
    assert entries(out) == ["a.bin", "b.txt"]
    assert (out / "a.bin").read_bytes() == b"\x00\x01"
    assert (out / "b.txt").read_text() == "from a writer\n"
    assert entries(out.parent) == ["set"]  # no staging directory left behind
    assert out.stat().st_mode & 0o777 == 0o755


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    written: list[Path] = []

    def first(path: Path) -> None:
        path.write_bytes(b"complete")
        written.append(path)

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise WriterFailed("disk full")

    with pytest.raises(WriterFailed):
        write_directory(parent / "set", {"first": first, "second": broken, "third": b"never"}, overwrite=False)
    assert entries(parent) == []
    assert written and not written[0].exists()


def test_a_failing_writer_keeps_the_old_directory_when_overwriting(tmp_path: Path) -> None:
    out = tmp_path / "set"
    write_directory(out, {"manifest.json": OWN_MANIFEST, "calibration.npz": b"old"}, overwrite=False)

    def broken(path: Path) -> None:
        raise WriterFailed("interrupted")

    with pytest.raises(WriterFailed):
        write_directory(out, {"manifest.json": OWN_MANIFEST, "later": broken}, overwrite=True)
    assert entries(out) == ["calibration.npz", "manifest.json"]
    assert (out / "calibration.npz").read_bytes() == b"old"
    assert entries(tmp_path) == ["set"]


def test_overwrite_replaces_the_whole_directory_repcurate_wrote(tmp_path: Path) -> None:
    out = tmp_path / "set"
    write_directory(out, {"manifest.json": OWN_MANIFEST, "calibration.npz": b"old", "projection.npz": b"p"},
                    overwrite=False)
    write_directory(out, {"manifest.json": OWN_MANIFEST, "calibration.npz": b"new"}, overwrite=True)
    assert entries(out) == ["calibration.npz", "manifest.json"]
    assert (out / "calibration.npz").read_bytes() == b"new"
    assert entries(tmp_path) == ["set"]  # neither staging nor the retired old copy remain


def test_overwrite_refuses_a_repcurate_directory_holding_a_users_file(tmp_path: Path) -> None:
    out = tmp_path / "set"
    write_directory(out, {"manifest.json": OWN_MANIFEST, "calibration.npz": b"old"}, overwrite=False)
    (out / "user-note.txt").write_text("added by hand")
    with pytest.raises(UsageError, match=re.escape("user-note.txt is not a file repcurate writes")):
        write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=True)
    assert entries(out) == ["calibration.npz", "manifest.json", "user-note.txt"]
    assert entries(tmp_path) == ["set"]


def test_overwrite_refuses_a_directory_repcurate_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "a.png").write_bytes(b"\x89PNG precious")
    (out / "manifest.json").write_text('{"tool": {"name": "something-else"}}')
    with pytest.raises(UsageError, match="not written by repcurate") as info:
        write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=True)
    assert info.value.exit_code == 2
    assert "pass --overwrite" not in str(info.value)
    assert (out / "a.png").read_bytes() == b"\x89PNG precious"
    assert entries(tmp_path) == ["photos"]


def test_overwrite_accepts_repcurate_html_reports_beside_a_set(tmp_path: Path) -> None:
    out = tmp_path / "set"
    write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=False)
    (out / "report.html").write_text('<!doctype html><html><head><meta name="generator" content="repcurate 0.1.0">')
    write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=True)
    assert entries(out) == ["manifest.json"]
    (out / "page.html").write_text("<html><head><title>someone else's</title>")
    with pytest.raises(UsageError, match=re.escape("page.html")):
        write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=True)


def test_refuses_a_non_empty_directory_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(UsageError, match="not empty") as info:
        write_directory(out, {"x": b"1"}, overwrite=False)
    assert "pass --overwrite" not in str(info.value)  # --overwrite would not replace it either
    assert info.value.exit_code == 2
    assert entries(out) == ["keep.txt"]
    assert entries(tmp_path) == ["set"]


def test_suggests_overwrite_only_for_repcurate_output(tmp_path: Path) -> None:
    out = tmp_path / "set"
    write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=False)
    with pytest.raises(UsageError, match="pass --overwrite"):
        write_directory(out, {"manifest.json": OWN_MANIFEST}, overwrite=False)


def test_an_empty_directory_is_used_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    write_directory(out, {"x": b"1"}, overwrite=False)
    assert entries(out) == ["x"]
    assert entries(tmp_path) == ["set"]


def test_refuses_a_file_in_the_way_even_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.write_text("a file")
    for overwrite in (False, True):
        with pytest.raises(UsageError, match="not a directory"):
            ensure_writable_target(out, overwrite=overwrite)
        with pytest.raises(UsageError, match="not a directory"):
            write_directory(out, {"x": b"1"}, overwrite=overwrite)
    assert out.read_text() == "a file"
    assert entries(tmp_path) == ["set"]


def test_ensure_writable_target_accepts_missing_empty_and_own(tmp_path: Path) -> None:
    ensure_writable_target(tmp_path / "missing", overwrite=False)
    ensure_writable_target(tmp_path, overwrite=False)
    (tmp_path / "manifest.json").write_bytes(OWN_MANIFEST)
    ensure_writable_target(tmp_path, overwrite=True)


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.normal(size=(5, 3, 8, 8)).astype(np.float32),
        "labels": np.array([3, 1, 4, 1, 5], dtype=np.int64),
        "fortran": np.asfortranarray(rng.integers(0, 255, size=(4, 6), dtype=np.uint8)),
    }


def test_write_npz_is_byte_deterministic_and_loadable(tmp_path: Path) -> None:
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    data = arrays()
    write_npz(first, data)
    write_npz(second, dict(reversed(list(data.items()))))  # insertion order does not matter
    assert first.read_bytes() == second.read_bytes()
    with np.load(first, allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["fortran", "labels", "x"]
        for name, array in data.items():
            np.testing.assert_array_equal(loaded[name], array)
            assert loaded[name].dtype == array.dtype
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["fortran.npy", "labels.npy", "x.npy"]
        assert all(i.date_time == ZIP_EPOCH for i in infos)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)


def test_write_npz_bytes_change_with_content(tmp_path: Path) -> None:
    data = arrays()
    write_npz(tmp_path / "a.npz", data)
    data["labels"] = data["labels"].copy()
    data["labels"][0] = 9
    write_npz(tmp_path / "b.npz", data)
    assert (tmp_path / "a.npz").read_bytes() != (tmp_path / "b.npz").read_bytes()


def test_write_npz_refuses_object_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_npz(tmp_path / "a.npz", {"x": np.array([{"a": 1}], dtype=object)})


def test_json_bytes_is_stable() -> None:
    obj = {"b": [1, 2], "a": {"z": None, "é": "ü"}}
    data = json_bytes(obj)
    assert data == '{\n  "a": {\n    "z": null,\n    "é": "ü"\n  },\n  "b": [\n    1,\n    2\n  ]\n}\n'.encode()
    assert json.loads(data) == obj
    assert json_bytes({"a": {"é": "ü", "z": None}, "b": [1, 2]}) == data
    with pytest.raises(ValueError):
        json_bytes({"x": float("nan")})


@pytest.mark.parametrize("maker", ["mkdtemp", "mkstemp"])
def test_a_signal_right_after_the_staging_entry_is_created_leaves_no_debris(tmp_path: Path, monkeypatch,
                                                                           maker: str) -> None:
    """Ctrl-C landing between ``mkdtemp``/``mkstemp`` and the assignment once orphaned the staging entry."""
    import signal
    import tempfile

    from repcurate.io.atomic import write_text_atomic

    real = getattr(tempfile, maker)

    def create_then_interrupt(*args, **kwargs):
        made = real(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # the default handler raises KeyboardInterrupt here
        return made

    monkeypatch.setattr(tempfile, maker, create_then_interrupt)
    # Python's own SIGINT handling, whatever an earlier test in this process installed or blocked (in a full-suite
    # run one did: the signal never became KeyboardInterrupt); restored afterwards
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        with pytest.raises(KeyboardInterrupt):
            if maker == "mkdtemp":
                write_directory(tmp_path / "out", {"a.txt": b"a"}, overwrite=False)
            else:
                write_text_atomic(tmp_path / "report.txt", "text")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_between_the_renames_whose_handler_does_not_stop_the_run_still_publishes(tmp_path, monkeypatch) -> None:
    """The renames are undone for a held SIGTERM; when its handler returns (a caller's own handler, not one that
    stops the run), the output is published after all, and the handler ran once."""
    import signal

    import repcurate.io.atomic as atomic
    from repcurate.io.atomic import write_directory

    seen: list[int] = []
    monkeypatch.setattr(atomic, "pause_for_tests",
                        lambda point: signal.raise_signal(signal.SIGTERM) if point == "between-renames" and not seen else None)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        write_directory(tmp_path / "out", {"a.txt": b"a"}, overwrite=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM]
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
