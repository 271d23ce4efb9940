"""The ``repcurate`` command line (installed as ``repcurate_cli``).

Run as the ``repcurate`` command, a Ctrl-C or SIGTERM that arrives while Python is still importing (before
:func:`repcurate_cli.main.main` takes over signal handling) ends the process quietly with exit 130 / 143:
nothing has been written yet, so there is nothing to clean up and no traceback to show.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"repcurate: interrupted\n" if signum == signal.SIGINT else b"repcurate: terminated\n")
    os._exit(130 if signum == signal.SIGINT else 143)


def _run_as_command() -> bool:
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return argv0.name == "repcurate" or (argv0.name == "__main__.py" and argv0.parent.name == "repcurate")


if _run_as_command():
    signal.signal(signal.SIGINT, _exit_quietly)
    signal.signal(signal.SIGTERM, _exit_quietly)
