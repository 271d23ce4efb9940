"""The code guards CI runs through the test command: ruff, mypy and import-linter's layer contracts
(configured in pyproject.toml) must pass on the library and the command line; ruff also on the tests
and the benchmark scripts, mypy also on the benchmark scripts."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("repcurate", "cli", "tests", "benchmarks")
TYPED = ("repcurate", "cli", "benchmarks")


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_checks_the_library_the_command_line_and_the_benchmarks() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert set(TYPED) <= set(settings["files"])


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers_hold() -> None:
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_package_folder_ships_in_the_wheel() -> None:
    """pyproject.toml lists the packages setuptools installs: a package folder missing there imports from a source
    checkout but not from an installed wheel (``repcurate`` then fails with ModuleNotFoundError)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "repcurate").rglob("__init__.py")}
    on_disk |= {"repcurate_cli"}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
