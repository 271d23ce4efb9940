"""Typed errors and the exit codes they map to.

Exit codes never change meaning:
0 ok · 1 checks failed · 2 usage · 3 bad input data · 4 missing optional dependency
· 5 internal error · 130 interrupted (SIGINT, Ctrl-C) · 143 terminated (SIGTERM).
"""
from __future__ import annotations

import signal

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


#: Signals the handlers below received in this process (a real Ctrl-C / SIGTERM, not one user code raised).
_RECEIVED: set[int] = set()


def interrupt_handler(signum: int, frame: object) -> None:
    """SIGINT handler: note the signal, then raise KeyboardInterrupt (like Python's own handler)."""
    _RECEIVED.add(signum)
    raise KeyboardInterrupt


def terminate_handler(signum: int, frame: object) -> None:
    """SIGTERM handler: note the signal, then raise :class:`Terminated`."""
    _RECEIVED.add(signum)
    raise Terminated()


def is_signal_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a real Ctrl-C / SIGTERM (stop the run) rather than user code (a preprocessing, a model
    factory, a postprocess) raising ``KeyboardInterrupt`` / ``SystemExit`` / another ``BaseException`` itself,
    which is that code failing. A KeyboardInterrupt counts as real when SIGINT reached :func:`interrupt_handler`,
    or when that handler is not installed (its origin cannot be told: assume a real Ctrl-C)."""
    if isinstance(exc, Terminated):
        return True
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT in _RECEIVED or signal.getsignal(signal.SIGINT) is not interrupt_handler
    return False


def user_code_failed(exc: BaseException) -> bool:
    """Whether an exception out of user code is that code's failure (to report or skip), not a real signal to
    pass on: any ``Exception``, and ``SystemExit`` / ``KeyboardInterrupt`` / other ``BaseException`` it raised."""
    return not is_signal_interrupt(exc)


class RepcurateError(Exception):
    """Base class of every error repcurate raises on purpose; carries its exit code."""

    exit_code: int = EXIT_INTERNAL


class UsageError(RepcurateError):
    """Invalid arguments or configuration (exit 2)."""

    exit_code = EXIT_USAGE


class InputError(RepcurateError):
    """Unusable input data: no images, unreadable list file, bad model or preprocessing output (exit 3)."""

    exit_code = EXIT_INPUT


class OutOfSpaceError(RepcurateError):
    """An output does not fit: its disk is full (or would be), a quota or the file-size limit is reached (exit 5,
    with the device and the size needed named)."""

    exit_code = EXIT_INTERNAL


class MissingDependencyError(RepcurateError):
    """An optional dependency needed for the requested feature is not installed (exit 4)."""

    exit_code = EXIT_MISSING_DEPENDENCY

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f'pip install "repcurate[{extra}]"' if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what} but is not installed; fix: {hint}")
        self.package = package
