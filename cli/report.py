"""``repcurate report``: one self-contained HTML page of a set, its checks and its confirmation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repcurate.data.footprint import set_footprint
from repcurate.io.outputs import code_file, refuse_output_file
from repcurate.report.html import report_html

from .common import EXIT_CODES_HELP, add_common_options, add_trust_option, emit_json

EXAMPLES = """examples:
  repcurate report --repset repset --out report.html
  repcurate check --repset repset --eval-dir data/val --format json --output check.json
  repcurate report --repset repset --check check.json --confirm confirm.json --out report.html
  (or write the page directly: `repcurate build|check ... --report FILE.html`)

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write one self-contained HTML page: the set, the checks and the proof",
        description="Render a set (thumbnails per class, skipped files, coverage projection) and, when given, the JSON "
                    "reports of check, confirm and doctor as one HTML file: images inline, no script, no network.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repset", required=True, type=Path, metavar="DIR", help="a `repcurate build` output")
    parser.add_argument("--check", type=Path, default=None, metavar="FILE.json", help="`repcurate check --format json` output")
    parser.add_argument("--confirm", type=Path, default=None, metavar="FILE.json", help="`repcurate confirm --format json` output")
    parser.add_argument("--doctor", type=Path, default=None, metavar="FILE.json",
                        help='findings to rank: {"findings": [{"title", "gain", "message"}], "recommended_config": {}}')
    parser.add_argument("--eval-preprocess", default=None, metavar="SPEC",
                        help="evaluation pipeline for the preprocessing-parity panel (default: the one the check recorded, "
                             "run only with --trust-set unless it is the bundled one)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.html", help="the HTML file to write (atomically)")
    add_trust_option(parser)
    add_common_options(parser)
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    refuse_output_file(args.out, input_files=[args.check, args.confirm, args.doctor, code_file(args.eval_preprocess)],
                       input_dirs=set_footprint(args.repset).inputs("set"), option="--out")
    page = report_html(args.repset, args.out, check=args.check, confirm=args.confirm, doctor=args.doctor,
                       eval_preprocess=args.eval_preprocess, trust_set=args.trust_set)
    sections = ["set", "coverage"] + [name for name in ("check", "confirm", "doctor") if getattr(args, name) is not None]
    size = len(page.encode("utf-8"))
    if args.format == "json":
        emit_json({"out": str(args.out), "bytes": size, "sections": sections})
    else:
        sys.stdout.write(f"wrote {args.out} ({size / 1e6:.2f} MB): {', '.join(sections)}\n")
    return 0
