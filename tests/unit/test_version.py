"""The version comes from the installed package's metadata, in one place."""
from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import repcurate
from repcurate.version import version


def test_version_is_the_installed_distributions_and_the_pyprojects():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert repcurate.__version__ == version() == importlib.metadata.version("repcurate") == pyproject["project"]["version"]
