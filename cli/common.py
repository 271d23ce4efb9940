"""Shared CLI pieces: logging set-up, output formats, exception → exit-code mapping."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.data.footprint import set_footprint, source_footprint
from repcurate.errors import (
    EXIT_CHECKS_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    RepcurateError,
    Terminated,
    UsageError,
)
from repcurate.io.atomic import COMMITTED, write_text_atomic
from repcurate.io.outputs import absolute, code_file, refuse_output_file
from repcurate.io.space import out_of_space

FORMATS = ("text", "json")

EXIT_CODES_HELP = """exit codes:
  0    success
  1    checks failed (doctor: tolerance missed)
  2    usage error (bad arguments or configuration)
  3    bad input data (no usable images, unreadable list, bad model or preprocessing output)
  4    missing optional dependency
  5    internal error
  130  interrupted (Ctrl-C / SIGINT)
  143  terminated (SIGTERM)
  130 and 143 leave no partial output: a directory or file appears complete or not at all"""


def add_common_options(parser: argparse.ArgumentParser, *, formats: tuple[str, ...] = FORMATS) -> None:
    """Options every command takes (``--format`` with the command's own choices)."""
    parser.add_argument("--format", choices=formats, default="text", help="result format (default: text)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr, no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose or args.debug else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("repcurate: %(message)s"))
    root = logging.getLogger("repcurate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("faiss").setLevel(logging.WARNING)


def emit(result: Any, fmt: str, output: Path | None, **options: Any) -> int:
    """Render ``result`` (any command's result) in ``fmt``, write it to ``output`` or stdout, and return the exit
    code of its gate: 0 when ``result.passed(**options)``, else 1 (checks failed)."""
    from repcurate.report.views import render

    emit_report(render(result, fmt, **options), output)
    return EXIT_OK if result.passed(**options) else EXIT_CHECKS_FAILED


def emit_report(text: str, output: Path | None) -> None:
    """Write a report to ``output`` atomically, or to stdout."""
    if output is not None:
        write_text_atomic(output, text)
    else:
        sys.stdout.write(text)


def add_report_option(parser: argparse.ArgumentParser) -> None:
    """``--report FILE.html``: also write the self-contained HTML report of this run."""
    parser.add_argument("--report", type=Path, default=None, metavar="FILE.html",
                        help="also write a self-contained HTML report of the set and this run (see `repcurate report`)")


def add_device_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--device auto|cpu|cuda|cuda:N`` (checked by the library up front: exit 2 for a bad value or a missing GPU)."""
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help=f"where {what} runs: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or "
                             "cuda:N (default: auto; Keras: TensorFlow is restricted to that device)")


def add_eval_source_options(parser: argparse.ArgumentParser) -> None:
    """``--split`` / ``--images-dir``: which part of an annotated ``--eval-dir`` (YOLO, COCO, masks folder) is read."""
    parser.add_argument("--split", default=DEFAULT_EVAL_SPLIT, metavar="NAME",
                        help="split of an --eval-dir YOLO data.yaml / segmentation folder (default: val)")
    parser.add_argument("--images-dir", type=Path, default=None, metavar="DIR",
                        help="folder an --eval-dir COCO JSON's file_name paths are relative to (default: the JSON's folder)")
    add_outside_root_option(parser)


def add_outside_root_option(parser: argparse.ArgumentParser) -> None:
    """``--allow-outside-root``: read COCO images whose ``file_name`` is absolute or leaves the image folder."""
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="read COCO images whose file_name is absolute or climbs out of the image folder with "
                             "'..' (default: such images are skipped as outside_image_root)")


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """``--trust-set``: run the model / preprocessing code a set's manifest (or a check JSON) names."""
    parser.add_argument("--trust-set", action="store_true",
                        help="run the model/preprocessing code (file.py:name, module:name) that the set's manifest or a "
                             "check JSON names, when no option here replaces it; without it such code never runs "
                             "(a set is untrusted data, like a downloaded file)")


def write_html_report(args: argparse.Namespace, repset: Path, **section: Any) -> None:
    """With ``--report``: write the HTML report of ``repset`` and this run's result (``check=`` or
    ``confirm=``, a result object or dict), showing this command line for that section."""
    if getattr(args, "report", None) is None:
        return
    from repcurate.report.html import report_html

    name = next(iter(section), "build")
    commands = {name: args.command_line} if getattr(args, "command_line", None) else {}
    report_html(repset, args.report, commands=commands, eval_preprocess=getattr(args, "eval_preprocess", None),
                trust_set=getattr(args, "trust_set", False), **section)
    logging.getLogger("repcurate").info("wrote the HTML report %s", args.report)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to file descriptor 1 (Python prints and C libraries such as MCT's mixed-precision
    solver alike) to stderr for the duration, so stdout carries only the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def set_files(repset: Path | None) -> list[Path]:
    """The files of a set directory (inputs that no report may overwrite)."""
    if repset is None:
        return []
    return [repset / name for name in ("manifest.json", "calibration.npz", "projection.npz")]


def guard_report_files(args: argparse.Namespace, *, inputs: list[tuple[str, Path]]) -> None:
    """Refuse (exit 2, before any work) ``--output`` / ``--report`` files that would overwrite an input of the
    command (``inputs``: ``(role, path)`` of every file and data folder it reads, see :mod:`repcurate.data.footprint`)
    or land inside an input folder, or that name the same file twice."""
    specs = [getattr(args, name, None) for name in ("model", "preprocess", "eval_preprocess", "postprocess")]
    files = [*(code_file(spec) for spec in specs), getattr(args, "config", None), getattr(args, "class_map", None)]
    outputs = [(option, getattr(args, attr, None)) for option, attr in (("--output", "output"), ("--report", "report"))]
    for option, path in outputs:
        refuse_output_file(path, input_files=files, input_dirs=inputs, option=option)
    given = [path for _, path in outputs if path is not None]
    if len(given) == 2 and absolute(given[0]) == absolute(given[1]):
        raise UsageError(f"--output and --report both name {given[0]}; fix: give them different files")


def eval_command_inputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Every file and data folder ``check`` / ``confirm`` / ``doctor`` read: the eval source (folder, list, data.yaml,
    COCO JSON with its image folder), the set's files and the training source its manifest records."""
    images_dir = getattr(args, "images_dir", None)
    return (source_footprint(args.eval_dir, images_dir=images_dir).inputs("eval")
            + source_footprint(getattr(args, "train_dir", None)).inputs("training")
            + set_footprint(args.repset).inputs("set"))


def guard_eval_command_reports(args: argparse.Namespace) -> None:
    """:func:`guard_report_files` for ``check`` / ``confirm`` / ``doctor``: see :func:`eval_command_inputs`."""
    guard_report_files(args, inputs=eval_command_inputs(args))


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The Ctrl-C / SIGTERM an error was raised while handling (a library's clean-up failing on the way out)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, Terminated)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _kept_outputs() -> str:
    """For the exit line of a stopped run: the outputs it had already published completely (kept as they are)."""
    if not COMMITTED:
        return ""
    return "; already written completely and kept: " + ", ".join(str(path) for path in COMMITTED)


def run_guarded(args: argparse.Namespace, action: Any) -> int:
    """Run ``action(args)``; map errors to one-line messages and exit codes (tracebacks with --debug)."""
    from repcurate.data.coco import images_outside_root

    COMMITTED.clear()
    try:
        try:
            with images_outside_root(bool(getattr(args, "allow_outside_root", False))):
                return int(action(args) or EXIT_OK)
        except Exception as exc:
            interrupt = _interrupt_behind(exc)
            if interrupt is not None and not args.debug:
                raise interrupt from None
            raise
    except KeyboardInterrupt:
        sys.stderr.write(f"repcurate: interrupted{_kept_outputs()}\n")
        return EXIT_INTERRUPTED
    except Terminated:
        sys.stderr.write(f"repcurate: terminated{_kept_outputs()}\n")
        return EXIT_TERMINATED
    except RepcurateError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"repcurate: error: {exc}\n")
        return exc.exit_code
    except MemoryError:
        if args.debug:
            raise
        sys.stderr.write("repcurate: error: out of memory; fix: lower --batch-size or --size\n")
        return EXIT_INTERNAL
    except Exception as exc:
        if args.debug:
            raise
        full = out_of_space(exc, Path(exc.filename) if isinstance(exc, OSError) and exc.filename else Path.cwd(), None)
        if full is not None:  # a full disk met outside the atomic writers (a cache, a library's own file)
            sys.stderr.write(f"repcurate: error: {full}\n")
            return full.exit_code
        sys.stderr.write(f"repcurate: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)\n")
        return EXIT_INTERNAL
