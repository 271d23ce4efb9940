"""The ``repcurate`` command line (installed as ``repcurate_cli``).

Run as the ``repcurate`` command, a Ctrl-C or SIGTERM that arrives while Python is still importing (before
:func:`repcurate_cli.main.main` takes over signal handling) ends the process quietly with exit 130 / 143:
nothing has been written yet, so there is nothing to clean up and no traceback to show. The handlers are
installed before anything else is imported (only ``os``, ``signal`` and ``sys``, which the interpreter has
already loaded), so the window without them is the interpreter's own start-up.
"""
import os
import signal
import sys


def _exit_quietly(signum, frame):  # a signal handler: (int, frame | None)
    os.write(2, b"repcurate: interrupted\n" if signum == signal.SIGINT else b"repcurate: terminated\n")
    os._exit(130 if signum == signal.SIGINT else 143)


def _run_as_command() -> bool:
    parts = (sys.argv[0] if sys.argv else "").replace("\\", "/").split("/")
    return parts[-1] == "repcurate" or parts[-2:] == ["repcurate", "__main__.py"]


if _run_as_command():
    signal.signal(signal.SIGINT, _exit_quietly)
    signal.signal(signal.SIGTERM, _exit_quietly)
