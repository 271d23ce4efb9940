"""``repcurate confirm``: quantize with MCT using the curated set and random sets; measure on held-out data."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repcurate.commands.confirm import DEFAULT_MAX_EVAL, confirm
from repcurate.quantize.base import GridAxis
from repcurate.quantize.registry import QUANTIZERS, grid_axes
from repcurate.report import views
from repcurate.sizing import DEFAULT_TOLERANCE
from repcurate.tasks import REGISTRY as TASKS

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
  repcurate confirm --repset repset --model model.py:make_model --eval-dir data/val
  repcurate confirm --repset repset --model model.py:make_model --eval-dir data/val --weights-bits 4 --random-sets 5
  repcurate confirm --repset repset --model model.keras --eval-dir data/val --export quantized/
  repcurate confirm --repset repset --model detector.py:make_model --eval-dir data/val --postprocess detector.py:decode
  repcurate confirm --repset repset --model model.py:make_model --eval-dir data/val --quantizer onnxruntime
  repcurate confirm --repset repset --model model.py:make_model --eval-dir data/val --sizes 16,32,64,128,300
  repcurate confirm --repset repset --model detector.py:make_model --eval-dir coco8/data.yaml --postprocess detector.py:decode
  repcurate confirm --repset repset --model detector.py:make_model --eval-dir annotations/instances_val.json \
      --images-dir images/val --postprocess detector.py:decode

"""


def _axis_type(axis: GridAxis) -> Callable[[str], tuple[Any, ...]]:
    """argparse's ``type=`` for a grid axis: its words → values, a bad word a usage error with the axis's hint."""
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return axis.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("use comma-separated sizes, e.g. 16,32,64,128") from None
    if not sizes:
        raise argparse.ArgumentTypeError("use comma-separated sizes, e.g. 16,32,64,128")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "confirm", help="prove with MCT (or ONNX Runtime) PTQ whether the curated set beats random sets",
        description="Quantize the model with MCT (or ONNX Runtime) once per calibration set (curated, K random, first "
                    "N files) and point of the quantizer's settings grid (MCT: bias correction; ONNX Runtime: "
                    "calibration method), and measure every quantized model on held-out images. With --sizes, do it "
                    "at several set sizes and recommend how many images are enough.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repset", required=True, type=Path, metavar="DIR")
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="the model to quantize: efficientnet-lite0, file.py:factory, module:factory (PyTorch or Keras), a .keras/.h5 "
                             "file, or an Ultralytics YOLO checkpoint best.pt (brings its own decoding)")
    parser.add_argument("--eval-dir", required=True, type=Path, metavar="EVAL",
                        help="held-out images, disjoint from the training directory:"
                             " a folder, a CSV/JSONL list, a YOLO data.yaml (val split), a COCO JSON or a segmentation folder")
    add_eval_source_options(parser)
    parser.add_argument("--preprocess", default=None, metavar="SPEC",
                        help="model input pipeline (default: the set's own; code the set names runs only with --trust-set)")
    parser.add_argument("--train-dir", type=Path, default=None, metavar="DIR",
                        help="where the random and first-N sets are drawn from: the folder, list or data.yaml the set was "
                             "built from (default: the one the set records, read only for a set you built or trust)")
    parser.add_argument("--random-sets", type=int, default=3, metavar="K", help="random sets of the same size (default: 3)")
    parser.add_argument("--no-first-n", action="store_true", help="skip the 'first N files' arm")
    parser.add_argument("--quantizer", choices=tuple(QUANTIZERS), default="mct",
                        help="mct (default): MCT PTQ; onnxruntime: ONNX Runtime quantize_static QDQ of the model's ONNX "
                             "export (PyTorch models; --weights-bits 8 or 4)")
    for axis in grid_axes():  # one option per settings-grid axis of every registered quantizer
        parser.add_argument(axis.option, type=_axis_type(axis), default=None, metavar=axis.metavar, help=axis.help)
    parser.add_argument("--weights-bits", type=int, default=8,
                        choices=sorted({bits for q in QUANTIZERS.values() for bits in q.weight_bits}, reverse=True),
                        help="kernel bits of every conv/linear (default: 8; onnxruntime: 8 or 4)")
    parser.add_argument("--sizes", type=_sizes, default=None, metavar="N,N,...",
                        help="measure curated and random sets at each size (each at most the set's) and recommend "
                             "the smallest that is enough")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="T",
                        help="with --sizes: the gap to the largest size, and the random sets' spread, that count as "
                             f"enough, in the metric's shown unit (top-1 points, dB) (default: {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--tpc", default="imx500:1.0", help="target platform capabilities device:version (default: imx500:1.0)")
    parser.add_argument("--task", default=None, choices=tuple(TASKS),
                        help="how outputs are scored (default: detection with --postprocess, else classification for one "
                             "score vector per image, fidelity (SQNR, cosine to the float model) otherwise)")
    parser.add_argument("--postprocess", default=None, metavar="SPEC",
                        help="detector decoding, file.py:fn: model outputs (list of arrays) -> per image (boxes xyxy in "
                             "input pixels, scores, classes)")
    parser.add_argument("--class-map", type=Path, default=None, metavar="FILE", help="JSON {eval class name: model class index}")
    parser.add_argument("--max-eval", type=int, default=DEFAULT_MAX_EVAL, help=f"eval images used at most (default: {DEFAULT_MAX_EVAL})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32, metavar="N",
                        help="representative images per batch fed to MCT's statistics collection (default: 32; lower it "
                             "when a large model at a large input size runs out of memory)")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="write the report here (atomically)")
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="write the best run's quantized model here with MCT's exporter (ONNX for PyTorch, .keras for Keras) plus export.json")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --export directory that repcurate wrote before (never a folder holding anything else)")
    add_device_option(parser, "the float and quantized models (MCT included)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="cache of the decoded eval tensors (default: $REPCURATE_CACHE_DIR or ~/.cache/repcurate)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the eval tensor cache")
    add_report_option(parser)
    add_trust_option(parser)
    add_common_options(parser, formats=views.formats("confirm"))
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    guard_eval_command_reports(args)
    result = confirm(args.repset, args.model, args.eval_dir, random_sets=args.random_sets, first_n=not args.no_first_n,
                     grid={axis.name: getattr(args, axis.name) for axis in grid_axes()}, weights_bits=args.weights_bits, tpc=args.tpc,
                     preprocess=args.preprocess, class_map=args.class_map, max_eval=args.max_eval, seed=args.seed, batch_size=args.batch_size,
                     export=args.export, overwrite=args.overwrite, trust_set=args.trust_set, quantizer=args.quantizer,
                     sizes=args.sizes, tolerance=args.tolerance,
                     task=args.task, postprocess=args.postprocess,
                     device=args.device, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                     split=args.split, images_dir=args.images_dir, train_dir=args.train_dir)
    write_html_report(args, args.repset, confirm=result)
    return emit(result, args.format, args.output)
