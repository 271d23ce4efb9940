"""``repcurate build``: curate a representative set from a training directory."""
from __future__ import annotations

import argparse
from pathlib import Path

from repcurate.curate import DEFAULT_SIZE, build
from repcurate.data.scan import LAYOUTS
from repcurate.select.pool import POOL_FACTOR, POOL_MIN
from repcurate.select.quotas import BALANCES
from repcurate.select.selection import DEFAULT_NEAR_DUPLICATE, DEFAULT_OUTLIER_Z
from repcurate.select.strategies import STRATEGIES

from .common import EXIT_CODES_HELP, add_common_options, add_report_option, emit, guard_report_files, write_html_report

EXAMPLES = """examples:
  repcurate build --train-dir data/train --out repset
  repcurate build --train-dir data/train --out repset --model my_model.py:make_model \\
      --preprocess my_model.py:preprocess --size 500
  repcurate build --train-dir list.csv --out repset --match-dir device_frames/
  repcurate build --train-dir data/train --out repset --report repset.html
  repcurate build --train-dir imagenet/train --out repset --pool 64     # 64 random files per class

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build", help="curate a representative set from a training directory",
        description="Scan a training directory, embed every image with the model to be quantized, and select a "
                    "class-balanced, diverse representative set for MCT post-training quantization.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", required=True, type=Path, metavar="DIR",
                        help="image folder (class-per-subfolder or flat) or a CSV/JSONL list with path,label")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out that repcurate wrote before (never a folder holding anything else)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, metavar="N",
                        help=f"number of images to select (default: {DEFAULT_SIZE})")
    parser.add_argument("--balance", choices=BALANCES, default="uniform", help="per-class quotas (default: uniform)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="kmeans", help="selection inside each class (default: kmeans)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--model", default=None, metavar="SPEC",
                        help="model to be quantized: efficientnet-lite0 (default), file.py:factory, module:factory, model.keras/.h5")
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help="layer to take features from (default: the input of the classifier head)")
    parser.add_argument("--preprocess", default=None, metavar="SPEC",
                        help="evaluation preprocessing, file.py:fn or module:fn (PIL RGB image → sample); "
                             "required with a user --model")
    parser.add_argument("--match-dir", type=Path, default=None, metavar="DIR",
                        help="unlabelled images from the deployment domain to match")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="folder layout (default: auto)")
    parser.add_argument("--pool", default=None, metavar="N|all",
                        help=f"embed only a seeded random pool of N files per class (all: every file; default auto: "
                             f"per class max({POOL_FACTOR} x its quota, {POOL_MIN}), all of a smaller class)")
    parser.add_argument("--include-outliers", action="store_true", help="allow far outliers to be selected")
    parser.add_argument("--outlier-z", type=float, default=DEFAULT_OUTLIER_Z,
                        help=f"robust z-score of the k-NN distance marking a far outlier (default: {DEFAULT_OUTLIER_Z})")
    parser.add_argument("--near-duplicate", type=float, default=DEFAULT_NEAR_DUPLICATE, metavar="DIST",
                        help=f"embedding distance under which two images are near duplicates (default: {DEFAULT_NEAR_DUPLICATE})")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="embedding cache (default: $REPCURATE_CACHE_DIR or ~/.cache/repcurate)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument("--batch-size", type=int, default=32, help="inference batch size (default: 32)")
    parser.add_argument("--workers", type=int, default=2, help="image decoding threads (default: 2)")
    add_report_option(parser)
    add_common_options(parser)
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    train_is_list = args.train_dir.is_file()
    guard_report_files(args, input_dirs={"training folder": None if train_is_list else args.train_dir,
                                         "--match-dir folder": args.match_dir},
                       input_files=[args.train_dir if train_is_list else None])
    result = build(
        args.train_dir, args.out, size=args.size, balance=args.balance, strategy=args.strategy, seed=args.seed,
        model=args.model, layer=args.layer, preprocess=args.preprocess, match_dir=args.match_dir,
        layout=args.layout, include_outliers=args.include_outliers, outlier_z=args.outlier_z,
        near_duplicate=args.near_duplicate, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        batch_size=args.batch_size, workers=args.workers, overwrite=args.overwrite,
        progress=False if args.quiet else None, pool=args.pool,
    )
    write_html_report(args, args.out)
    return emit(result, args.format, None)
