"""``repcurate build``: curate a representative set from a training directory."""
from __future__ import annotations

import argparse
from pathlib import Path

from repcurate.commands.build import EMIT_FORMATS, build
from repcurate.data.footprint import source_footprint
from repcurate.data.scan import LAYOUTS
from repcurate.embed.engine import DEFAULT_RAY_TIMEOUT
from repcurate.embed.engines import REGISTRY as ENGINE_REGISTRY
from repcurate.options import DEFAULT_SIZE
from repcurate.report import views
from repcurate.select.object_quotas import DEFAULT_BACKGROUND_SHARE
from repcurate.select.pool import POOL_FACTOR, POOL_MIN
from repcurate.select.quotas import BALANCES
from repcurate.select.selection import DEFAULT_NEAR_DUPLICATE, DEFAULT_OUTLIER_Z
from repcurate.select.strategies import REGISTRY as STRATEGY_REGISTRY

from .common import (
    EXIT_CODES_HELP,
    add_common_options,
    add_device_option,
    add_outside_root_option,
    add_report_option,
    emit,
    guard_report_files,
    write_html_report,
)

EXAMPLES = """examples:
  repcurate build --train-dir data/train --out repset
  repcurate build --train-dir data/train --out repset --model my_model.py:make_model \\
      --preprocess my_model.py:preprocess --size 500
  repcurate build --train-dir list.csv --out repset --match-dir device_frames/
  repcurate build --train-dir data/train --out repset --report repset.html
  repcurate build --train-dir coco8/data.yaml --out repset --model det.py:make --preprocess det.py:prep --emit yolo
  repcurate build --train-dir annotations/instances_train.json --images-dir images/train --out repset ...
  repcurate build --train-dir /shared/train --out repset --engine ray --ray-address ray://head:10001 --device cuda
  repcurate build --train-dir imagenet/train --out repset --pool 64     # 64 random files per class

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build", help="curate a representative set from a training directory",
        description="Scan a training directory, embed every image with the model to be quantized, and select a "
                    "class-balanced, diverse representative set for MCT post-training quantization.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", required=True, type=Path, metavar="DIR",
                        help="image folder (class-per-subfolder or flat), a CSV/JSONL list with path,label, a YOLO "
                             "data.yaml, a COCO instances JSON, or a segmentation folder (images/ + masks/)")
    parser.add_argument("--split", default="train", metavar="NAME",
                        help="split of a YOLO data.yaml / segmentation folder to curate from (default: train)")
    parser.add_argument("--images-dir", type=Path, default=None, metavar="DIR",
                        help="folder a COCO JSON's file_name paths are relative to (default: the JSON's folder)")
    add_outside_root_option(parser)
    parser.add_argument("--background-share", type=float, default=DEFAULT_BACKGROUND_SHARE, metavar="F",
                        help="share of the set given to images without objects, for detection/segmentation data "
                             f"(default: {DEFAULT_BACKGROUND_SHARE})")
    parser.add_argument("--emit", action="append", choices=EMIT_FORMATS, default=[],
                        help="also write the curated images as a dataset view: yolo = data.yaml + images.txt "
                             "for Ultralytics (yolo export format=imx data=OUT/data.yaml)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out that repcurate wrote before (never a folder holding anything else)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, metavar="N",
                        help=f"number of images to select (default: {DEFAULT_SIZE})")
    parser.add_argument("--balance", choices=BALANCES, default="uniform", help="per-class quotas (default: uniform)")
    parser.add_argument("--strategy", choices=tuple(STRATEGY_REGISTRY), default="kmeans", help="selection inside each class (default: kmeans)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--model", default=None, metavar="SPEC",
                        help="model to be quantized: efficientnet-lite0 (default), file.py:factory, module:factory, model.keras/.h5, "
                             "or an Ultralytics YOLO checkpoint best.pt (brings its own preprocessing)")
    parser.add_argument("--layer", action="append", default=None, metavar="NAME",
                        help="layer(s) to take features from, comma-separated or repeated: each pooled, concatenated "
                             "(default: the input of the classifier head; without one, the layer feeding all output "
                             "heads, see README)")
    parser.add_argument("--preprocess", default=None, metavar="SPEC",
                        help="evaluation preprocessing, file.py:fn or module:fn (PIL RGB image → sample); "
                             "required with a user --model")
    parser.add_argument("--match-dir", type=Path, default=None, metavar="DIR",
                        help="unlabelled images from the deployment domain to match")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="folder layout (default: auto)")
    parser.add_argument("--pool", default=None, metavar="N|all",
                        help=f"embed only a seeded random pool of N files per class (all: every file; default auto: "
                             f"per class max({POOL_FACTOR} x its quota, {POOL_MIN}), all of a smaller class); for a "
                             "YOLO/COCO/segmentation dataset, per object class N of the images holding it (auto: from "
                             "the object quotas; background images like one more class), every label still read")
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
    add_device_option(parser, "the embedding model")
    parser.add_argument("--engine", choices=tuple(ENGINE_REGISTRY), default="local",
                        help="who embeds the files the cache lacks: local (this process) or ray (a Ray cluster; "
                             'pip install "repcurate[ray]") (default: local)')
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="with --engine ray: the cluster to join (default: $RAY_ADDRESS, else a local cluster)")
    parser.add_argument("--ray-actors", type=int, default=None, metavar="N",
                        help="with --engine ray: model replicas (default: one per GPU with --device cuda, else 1)")
    parser.add_argument("--ray-timeout", type=float, default=DEFAULT_RAY_TIMEOUT, metavar="SECONDS",
                        help="with --engine ray and an address: give up (exit 2) when the cluster does not answer "
                             f"within this many seconds (default: {DEFAULT_RAY_TIMEOUT:g})")
    add_report_option(parser)
    add_common_options(parser, formats=views.formats("build"))
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    guard_report_files(args, inputs=source_footprint(args.train_dir, images_dir=args.images_dir).inputs("training")
                       + source_footprint(args.match_dir).inputs("--match-dir"))
    result = build(
        args.train_dir, args.out, size=args.size, balance=args.balance, strategy=args.strategy, seed=args.seed,
        model=args.model, layer=args.layer, preprocess=args.preprocess, match_dir=args.match_dir,
        layout=args.layout, include_outliers=args.include_outliers, outlier_z=args.outlier_z,
        near_duplicate=args.near_duplicate, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        batch_size=args.batch_size, workers=args.workers, overwrite=args.overwrite,
        progress=False if args.quiet else None, split=args.split, images_dir=args.images_dir,
        background_share=args.background_share, emit=tuple(args.emit), device=args.device, engine=args.engine,
        ray_address=args.ray_address, ray_actors=args.ray_actors, pool=args.pool,
        ray_timeout=args.ray_timeout,
    )
    write_html_report(args, args.out)
    return emit(result, args.format, None)
