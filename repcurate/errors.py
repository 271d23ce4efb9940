"""Typed errors and the exit codes they map to.

Exit codes never change meaning:
0 ok · 1 checks failed · 2 usage · 3 bad input data · 4 missing optional dependency
· 5 internal error · 130 interrupted (SIGINT, Ctrl-C) · 143 terminated (SIGTERM).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_CHECKS_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_MISSING_DEPENDENCY = 4
EXIT_INTERNAL = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM (like KeyboardInterrupt on SIGINT), so outputs are cleaned up (exit 143)."""


class RepcurateError(Exception):
    """Base class of every error repcurate raises on purpose; carries its exit code."""

    exit_code: int = EXIT_INTERNAL


class UsageError(RepcurateError):
    """Invalid arguments or configuration (exit 2)."""

    exit_code = EXIT_USAGE


class InputError(RepcurateError):
    """Unusable input data: no images, unreadable list file, bad model or preprocessing output (exit 3)."""

    exit_code = EXIT_INPUT


class MissingDependencyError(RepcurateError):
    """An optional dependency needed for the requested feature is not installed (exit 4)."""

    exit_code = EXIT_MISSING_DEPENDENCY

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f'pip install "repcurate[{extra}]"' if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what} but is not installed; fix: {hint}")
        self.package = package
