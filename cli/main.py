"""Entry point of the ``repcurate`` command."""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading

from repcurate.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    interrupt_handler,
    terminate_handler,
)
from repcurate.runtime import quiet_tensorflow, tune_allocator
from repcurate.version import __version__

from . import analyze as analyze_command
from . import build as build_command
from . import cache as cache_command
from . import check as check_command
from . import confirm as confirm_command
from . import doctor as doctor_command
from . import export as export_command
from . import report as report_command
from .common import EXIT_CODES_HELP, configure_logging, run_guarded


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line and the documented exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"repcurate: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="repcurate", description="Curate representative datasets for MCT post-training quantization.",
                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"repcurate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    analyze_command.register(subparsers)
    build_command.register(subparsers)
    check_command.register(subparsers)
    confirm_command.register(subparsers)
    doctor_command.register(subparsers)
    export_command.register(subparsers)
    report_command.register(subparsers)
    cache_command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; SIGINT raises KeyboardInterrupt (exit 130) and SIGTERM :class:`Terminated` (exit 143)
    so that partial outputs are removed on the way out. The previous handlers are restored on return."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    try:  # entered before the handlers change, so a signal between the two changes is still caught below
        if in_main_thread:
            signal.signal(signal.SIGINT, interrupt_handler)  # they note the signal: user code raising
            signal.signal(signal.SIGTERM, terminate_handler)  # KeyboardInterrupt is not a Ctrl-C
        parser = make_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "action", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        args.command_line = "repcurate " + shlex.join(sys.argv[1:] if argv is None else argv)  # shown in --report pages
        configure_logging(args)
        quiet_tensorflow(debug=args.debug)  # before anything imports TensorFlow (MCT does)
        tune_allocator()  # this process is ours: keep tensor memory instead of page-faulting it back each batch
        return run_guarded(args, args.action)
    except KeyboardInterrupt:  # before run_guarded (parsing, logging set-up)
        sys.stderr.write("repcurate: interrupted\n")
        return EXIT_INTERRUPTED
    except Terminated:
        sys.stderr.write("repcurate: terminated\n")
        return EXIT_TERMINATED
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
