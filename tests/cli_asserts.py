"""Assertions shared by the CLI tests."""
from __future__ import annotations

import subprocess


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, exactly one ``repcurate: error`` line containing every needle, empty stdout."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("repcurate: error")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0]
    assert result.stdout == ""
