"""``repcurate check``: validate a representative set against the evaluation pipeline (a CI gate)."""
from __future__ import annotations

import argparse
from pathlib import Path

from repcurate.commands.check import check
from repcurate.report import views

from .common import (
    EXIT_CODES_HELP,
    add_common_options,
    add_device_option,
    add_eval_source_options,
    add_report_option,
    add_trust_option,
    emit,
    guard_eval_command_reports,
    write_html_report,
)

EXAMPLES = """examples:
  repcurate check --repset repset --eval-dir data/val
  repcurate check --repset repset --eval-dir data/val --eval-preprocess eval.py:transform --format junit --output check.xml
  repcurate check --repset repset --eval-dir data/val --model model.py:make_model --fail-on warn
  repcurate check --repset repset --eval-dir data/val --model detector.py:make_model --layer neck.p3,neck.p4
  repcurate check --repset repset --eval-dir data/val --format junit --output check.xml --report check.html
  repcurate check --repset repset --eval-dir coco8/data.yaml --model detector.py:make_model --trust-set

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="validate a representative set against the evaluation pipeline",
        description="Run the checks (preprocessing parity, size, class coverage, duplicates, distribution shift, "
                    "activation ranges) and exit 1 when the verdict fails the gate.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repset", required=True, type=Path, metavar="DIR", help="a `repcurate build` output")
    parser.add_argument("--eval-dir", required=True, type=Path, metavar="EVAL",
                        help="evaluation images (labelled or not), a CSV/JSONL list,"
                             " a YOLO data.yaml, a COCO JSON or a segmentation folder")
    add_eval_source_options(parser)
    parser.add_argument("--eval-preprocess", default=None, metavar="SPEC",
                        help="evaluation pipeline (default: the repset's own; code the set names runs only with --trust-set)")
    parser.add_argument("--model", default=None, metavar="SPEC", help="float model: enables activation_ranges")
    parser.add_argument("--layer", action="append", default=None, metavar="NAME",
                        help="feature layer(s) of the embedding checks, comma-separated or repeated (default: the "
                             "set's own, from its manifest)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="TOML/JSON {check_id: {param: value}} (default: [tool.repcurate.check] in pyproject.toml)")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="write the report here (atomically) instead of stdout")
    parser.add_argument("--fail-on", choices=("fail", "warn"), default="fail", help="what fails the gate (default: fail)")
    parser.add_argument("--allow-errors", action="store_true", help="a crashing check does not fail the gate")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR", help="embedding cache")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    add_device_option(parser, "the embedding model and the --model passes")
    add_report_option(parser)
    add_trust_option(parser)
    add_common_options(parser, formats=views.formats("check"))
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    guard_eval_command_reports(args)
    result = check(args.repset, args.eval_dir, eval_preprocess=args.eval_preprocess, model=args.model,
                   config=args.config, allow_errors=args.allow_errors, cache_dir=args.cache_dir,
                   use_cache=not args.no_cache, seed=args.seed, trust_set=args.trust_set,
                   layer=args.layer, device=args.device, split=args.split, images_dir=args.images_dir)
    write_html_report(args, args.repset, check=result)
    return emit(result, args.format, args.output, fail_on=args.fail_on)
