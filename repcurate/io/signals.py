"""Holding SIGINT / SIGTERM across steps that must not be split (a rename pair, creating and naming a temp entry)."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

#: Test-only hooks (documented in tests/unit/io/test_atomic.py): with ``REPCURATE_TEST_PAUSE=<point>`` a writer says
#: ``repcurate-test: paused at <point>`` on stderr and sleeps ``REPCURATE_TEST_PAUSE_SECONDS`` (default 3) there, so
#: a test can send a real signal at that exact step. Unset, they cost one dictionary look-up.
PAUSE_VARIABLE = "REPCURATE_TEST_PAUSE"


def pause_for_tests(point: str) -> None:
    """Sleep at ``point`` when the test-only variable :data:`PAUSE_VARIABLE` names it (see above)."""
    if os.environ.get(PAUSE_VARIABLE) != point:
        return
    sys.stderr.write(f"repcurate-test: paused at {point}\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get("REPCURATE_TEST_PAUSE_SECONDS", "3")))


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[tuple[int, Any]]]:
    """Hold SIGINT and SIGTERM until the block is done (its steps must not be split), then act on them. Yields the
    list of held signals, so the block can see that one arrived (e.g. to undo what it published)."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    pending: list[tuple[int, Any]] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def hold(signum: int, frame: Any) -> None:
        if saved[signal.Signals(signum)] != signal.SIG_IGN:
            pending.append((signum, frame))

    for sig in saved:
        signal.signal(sig, hold)
    try:
        yield pending
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for signum, frame in pending[:1]:
            handler = saved[signal.Signals(signum)]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)
