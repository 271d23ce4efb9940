"""``repcurate analyze``: does the calibration set matter for this model, and how many images are enough?"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repcurate.analysis.render import text
from repcurate.analysis.stability import SIZES
from repcurate.commands.analyze import MAX_IMAGES, analyze
from repcurate.quantize.registry import get as quantizer_named

from .common import EXIT_CODES_HELP, add_common_options, add_trust_option, emit_json

EXAMPLES = """examples:
  repcurate analyze --images data/train --model model.py:make_model --preprocess prep.py:preprocess --weights-bits 2
  repcurate analyze --repset repset --model model.py:make_model --format json

"""


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give sizes as comma-separated integers, e.g. 8,16,32") from None
    if not sizes or sizes[0] < 2:
        raise argparse.ArgumentTypeError(f"{value!r}: sizes must be integers >= 2")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="does the calibration set matter for this model? (MCT thresholds across random sets)",
        description="One float pass of MCT's statistics collector over the pool (a seeded subsample), then MCT's own "
                    "threshold selection and bias correction for random sets of each size: how often each activation "
                    "quantizer's threshold differs from the pool's, how far bias-correction terms move, a verdict, "
                    "the recommended size and, for a built set, how many thresholds it matches vs random sets. "
                    "PyTorch models.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=None, metavar="DIR", help="the pool (default: the set's source)")
    parser.add_argument("--repset", type=Path, default=None, metavar="DIR", help="a `repcurate build` output to compare")
    parser.add_argument("--model", required=True, metavar="SPEC", help="path/to/file.py:factory or package.module:factory")
    parser.add_argument("--preprocess", default=None, metavar="SPEC",
                        help="model input pipeline (default: the set's own; code the set names runs only with --trust-set)")
    parser.add_argument("--tpc", default="imx500:1.0", help="target platform capabilities device:version (default: imx500:1.0)")
    parser.add_argument("--weights-bits", type=int, choices=quantizer_named("mct").weight_bits, default=8,
                        help="kernel weight bits (default: 8)")
    parser.add_argument("--no-bias-correction", action="store_true", help="analyse without MCT's bias correction")
    parser.add_argument("--sizes", type=_sizes, default=SIZES, metavar="N,N,...",
                        help=f"set sizes to draw (default: {','.join(map(str, SIZES))}; those above the pool are skipped)")
    parser.add_argument("--draws", type=int, default=10, metavar="B", help="random sets per size (default: 10)")
    parser.add_argument("--size", type=int, default=None, metavar="N",
                        help="the calibration size the verdict is for (default: the set's size, else the largest tried)")
    parser.add_argument("--max-images", type=int, default=MAX_IMAGES, metavar="N",
                        help=f"pool subsample, seeded (default: {MAX_IMAGES})")
    parser.add_argument("--memory-gib", type=float, default=1.0, metavar="GIB",
                        help="cap on the per-image statistics held; the pool is cut to what fits (default: 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsample and the random sets (default: 0)")
    add_trust_option(parser)
    add_common_options(parser, formats=("text", "json"))
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    result = analyze(model=args.model, images=args.images, repset=args.repset, preprocess=args.preprocess,
                     tpc=args.tpc, weights_bits=args.weights_bits, bias_correction=not args.no_bias_correction,
                     sizes=args.sizes, draws=args.draws, seed=args.seed, max_images=args.max_images, size=args.size,
                     trust_set=args.trust_set, memory_budget=int(args.memory_gib * 2**30))
    if args.format == "json":
        emit_json(result.to_dict())
    else:
        sys.stdout.write(text(result.to_dict()))
    return 0
