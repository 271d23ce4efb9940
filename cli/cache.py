"""``repcurate cache info`` / ``repcurate cache prune``: what the cache folder holds, and making room in it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repcurate.embed.cache import default_cache_dir
from repcurate.embed.cache_folder import ENV_MAX, cache_info, cache_max_bytes, format_size, parse_size, prune
from repcurate.errors import UsageError

from .common import EXIT_CODES_HELP, add_common_options, emit_json

EXAMPLES = f"""examples:
  repcurate cache info
  repcurate cache prune                 (down to the cap: ${ENV_MAX}, default 4G)
  repcurate cache prune --max 1G --cache-dir /data/repcurate-cache
  repcurate cache prune --max 0         (empty it)

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cache", help="show what the cache folder holds, or prune it to a size",
        description="The cache folder keeps embeddings (SQLite, per model and preprocessing) and preprocessed tensors "
                    f"(per eval load and per build); it is kept under a size cap (${ENV_MAX}, default 4G, `none` for "
                    "no cap) by removing the least recently used entries after each write.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=type(parser))
    info = actions.add_parser("info", help="what is in the cache folder, per kind, and how big",
                              epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_directory(info)
    add_common_options(info)
    info.set_defaults(action=run_info)
    pruning = actions.add_parser("prune", help="remove earlier versions' files and the least recently used entries",
                                 epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_directory(pruning)
    pruning.add_argument("--max", default=None, metavar="SIZE",
                         help=f"size to prune down to, e.g. 1G, 500M, 0 (default: ${ENV_MAX}, else 4G)")
    add_common_options(pruning)
    pruning.set_defaults(action=run_prune)


def _add_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="the cache folder (default: $REPCURATE_CACHE_DIR or ~/.cache/repcurate)")


def _cap_text(cap: int | None) -> str:
    return "no cap" if cap is None else f"cap {format_size(cap)}"


def run_info(args: argparse.Namespace) -> int:
    directory = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    cap = cache_max_bytes()
    info = cache_info(directory)
    if args.format == "json":
        emit_json({**info.to_dict(), "max_bytes": cap})
        return 0
    lines = [f"{directory}: {format_size(info.size)} ({_cap_text(cap)})"]
    for kind, (count, size) in info.by_kind().items():
        note = "  (earlier cache versions: removed by the next run or `repcurate cache prune`)" if kind == "old-version" and count else ""
        lines.append(f"  {kind:12} {count:6} items {format_size(size):>11}{note}")
    if info.other:
        lines.append(f"  {'other':12} {len(info.other):6} files {format_size(info.other_size):>11}  (not repcurate's cache: never removed)")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    directory = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    if args.max is None:
        cap = cache_max_bytes()
    else:
        try:
            cap = parse_size(args.max)
        except ValueError:
            raise UsageError(f"--max {args.max!r} is not a size; fix: e.g. --max 1G, --max 500M or --max 0") from None
    result = prune(directory, cap)
    if args.format == "json":
        emit_json(result.to_dict())
        return 0
    counts = ", ".join(f"{n} {kind}" for kind, n in
                       ((kind, sum(1 for i in result.removed if i.kind == kind)) for kind in ("embeddings", "tensors", "quarantined", "old-version"))
                       if n)
    sys.stdout.write(f"{directory}: freed {format_size(result.freed)}{f' ({counts})' if counts else ''}; "
                     f"{format_size(result.after)} left ({_cap_text(cap)})\n")
    for item in result.in_use:
        sys.stdout.write(f"  kept {item.paths[0]} ({format_size(item.size)}): in use by another run (or the folder's lock file is unusable)\n")
    return 0
