"""A full disk (a real 1 MB tmpfs) or a file-size limit (RLIMIT_FSIZE in a child process) met by the atomic writers:
refused up front when the size is known, else one plain OutOfSpaceError naming the device and the size needed,
nothing left behind."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from repcurate.errors import EXIT_INTERNAL, OutOfSpaceError
from repcurate.io.atomic import write_directory, write_text_atomic

TWO_MB = 2 << 20


def test_known_bytes_that_do_not_fit_are_refused_before_writing(tiny_disk: Path) -> None:
    with pytest.raises(OutOfSpaceError, match=rf"no space left on {tiny_disk} .*needed ~2\.1 MB") as caught:
        write_directory(tiny_disk / "out", {"data.bin": b"x" * TWO_MB}, overwrite=False)
    assert caught.value.exit_code == EXIT_INTERNAL and "fix:" in str(caught.value)
    assert list(tiny_disk.iterdir()) == []


def test_a_writer_filling_the_disk_is_one_plain_error_and_leaves_nothing(tiny_disk: Path) -> None:
    def big(path: Path) -> None:
        path.write_bytes(b"x" * TWO_MB)

    with pytest.raises(OutOfSpaceError, match=rf"no space left on {tiny_disk} writing .*out \(needed ~\d\.\d MB\); fix:"):
        write_directory(tiny_disk / "out", {"data.bin": big}, overwrite=False)
    assert list(tiny_disk.iterdir()) == []


def test_a_text_file_that_does_not_fit(tiny_disk: Path) -> None:
    with pytest.raises(OutOfSpaceError, match="no space left"):
        write_text_atomic(tiny_disk / "report.html", "x" * TWO_MB)
    assert list(tiny_disk.iterdir()) == []


def test_the_file_size_limit_is_named_too(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (a quota-like limit): Python ignores SIGXFSZ, so the write fails with EFBIG."""
    code = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from repcurate.errors import OutOfSpaceError
        from repcurate.io.atomic import write_directory
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            write_directory(Path({str(tmp_path / 'out')!r}), {{"a.bin": lambda p: p.write_bytes(b"x" * {TWO_MB})}},
                            overwrite=False)
        except OutOfSpaceError as exc:
            print(exc)
            sys.exit(7)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 7, result.stderr
    assert "file-size limit" in result.stdout and "ulimit -f" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == []
