"""Session fixtures for the ``repcurate check`` tests: one trained digits CNN, interleaved digits
train / eval folders, and sets built once with ``repcurate.build`` (embeddings cached in tmp)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.checks.checks_testdata import DigitsProject, write_digits


class Digits(DigitsProject):
    """The shared digits project, with a flat eval folder and sets built once per name."""

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.eval_flat = work / "eval_flat"
        write_digits(self.eval_flat, part="eval", flat=True)
        self._built: dict[str, Path] = {}

    def build(self, name: str, train: Path | None = None, *, size: int, **kwargs: Any) -> Path:
        """Build (once per name) a set with the digits CNN (or ``model=``); returns its directory."""
        if name not in self._built:
            self._built[name] = self.build_set(self.work / "sets" / name, size=size, train=train, **kwargs)
        return self._built[name]

    def folder(self, name: str, **kwargs: Any) -> Path:
        """A digits folder written once per name (``write_digits`` arguments)."""
        path = self.work / "folders" / name
        if not path.exists():
            write_digits(path, **kwargs)
        return path

    def check(self, repset: Any, eval_dir: Path | None = None, **kwargs: Any) -> Any:
        import repcurate

        kwargs.setdefault("config", {})  # never pick up a pyproject.toml around the test run
        kwargs.setdefault("trust_set", True)  # the sets name the test's own model file: run it, as --trust-set would
        return repcurate.check(repset, eval_dir or self.eval, cache_dir=self.cache, **kwargs)


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Digits:
    return Digits(tmp_path_factory.mktemp("checks_digits"))


@pytest.fixture(scope="session")
def good_set(digits: Digits) -> Path:
    """A correct set: 300 images, uniform over the 10 digits, from the training side."""
    return digits.build("good", size=300)


@pytest.fixture(scope="session")
def by_id() -> Callable[[Any, str], Any]:
    def pick(result: Any, check_id: str) -> Any:
        return next(c for c in result.checks if c.id == check_id)

    return pick
