"""``repcurate confirm``: quantize with MCT using the curated set and random sets; measure on held-out data."""
from __future__ import annotations

import argparse
from pathlib import Path

from repcurate.confirming import DEFAULT_MAX_EVAL, confirm
from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.tasks import REGISTRY as _TASKS

from .common import (
    EXIT_CODES_HELP,
    add_common_options,
    add_report_option,
    add_trust_option,
    emit,
    guard_eval_command_reports,
    read_class_map,
    write_html_report,
)

TASK_NAMES = tuple(_TASKS)

EXAMPLES = """examples:
  repcurate confirm --repset repset --model model.py:make_model --eval-dir data/val
  repcurate confirm --repset repset --model model.py:make_model --eval-dir data/val --weights-bits 4 --random-sets 5
  repcurate confirm --repset repset --model model.keras --eval-dir data/val --export quantized/
  repcurate confirm --repset repset --model detector.py:make_model --eval-dir data/val --postprocess detector.py:decode
  repcurate confirm --repset repset --model detector.py:make_model --eval-dir coco8/data.yaml --postprocess detector.py:decode
  repcurate confirm --repset repset --model detector.py:make_model --eval-dir annotations/instances_val.json \
      --images-dir images/val --postprocess detector.py:decode

"""


def _bias_correction(text: str) -> tuple[bool, ...]:
    values = {"on": True, "off": False}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or any(p not in values for p in parts):
        raise argparse.ArgumentTypeError("use on, off or on,off")
    return tuple(dict.fromkeys(values[p] for p in parts))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "confirm", help="prove with MCT PTQ whether the curated set beats random sets",
        description="Quantize the model with MCT once per calibration set (curated, K random, first N files) and "
                    "bias-correction setting, and measure every quantized model on held-out images.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repset", required=True, type=Path, metavar="DIR")
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="the model to quantize: efficientnet-lite0, file.py:factory, module:factory (PyTorch or Keras), or a .keras/.h5 file")
    parser.add_argument("--eval-dir", required=True, type=Path, metavar="EVAL",
                        help="held-out images, disjoint from the training directory:"
                             " a folder, a CSV/JSONL list, a YOLO data.yaml (val split), a COCO JSON or a segmentation folder")
    parser.add_argument("--split", default=DEFAULT_EVAL_SPLIT, metavar="NAME",
                        help="split of an --eval-dir YOLO data.yaml / segmentation folder (default: val)")
    parser.add_argument("--images-dir", type=Path, default=None, metavar="DIR",
                        help="folder an --eval-dir COCO JSON's file_name paths are relative to (default: the JSON's folder)")
    parser.add_argument("--preprocess", default=None, metavar="SPEC",
                        help="model input pipeline (default: the set's own; code the set names runs only with --trust-set)")
    parser.add_argument("--random-sets", type=int, default=3, metavar="K", help="random sets of the same size (default: 3)")
    parser.add_argument("--no-first-n", action="store_true", help="skip the 'first N files' arm")
    parser.add_argument("--bias-correction", type=_bias_correction, default=(True, False), metavar="on,off")
    parser.add_argument("--weights-bits", type=int, choices=(8, 4, 2), default=8, help="kernel bits of every conv/linear (default: 8)")
    parser.add_argument("--tpc", default="imx500:1.0", help="target platform capabilities device:version (default: imx500:1.0)")
    parser.add_argument("--task", default=None, choices=TASK_NAMES,
                        help="how outputs are scored (default: detection with --postprocess, else classification for one "
                             "score vector per image, fidelity (SQNR, cosine to the float model) otherwise)")
    parser.add_argument("--postprocess", default=None, metavar="SPEC",
                        help="detector decoding, file.py:fn: model outputs (list of arrays) -> per image (boxes xyxy in "
                             "input pixels, scores, classes)")
    parser.add_argument("--class-map", type=Path, default=None, metavar="FILE", help="JSON {eval class name: model class index}")
    parser.add_argument("--max-eval", type=int, default=DEFAULT_MAX_EVAL, help=f"eval images used at most (default: {DEFAULT_MAX_EVAL})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="write the report here (atomically)")
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="write the best run's quantized model here with MCT's exporter (ONNX for PyTorch, .keras for Keras) plus export.json")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --export directory that repcurate wrote before (never a folder holding anything else)")
    add_report_option(parser)
    add_trust_option(parser)
    add_common_options(parser, formats=("text", "json", "markdown"))
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    guard_eval_command_reports(args)
    class_map = read_class_map(args.class_map)
    result = confirm(args.repset, args.model, args.eval_dir, random_sets=args.random_sets, first_n=not args.no_first_n,
                     bias_correction=args.bias_correction, weights_bits=args.weights_bits, tpc=args.tpc,
                     preprocess=args.preprocess, class_map=class_map, max_eval=args.max_eval, seed=args.seed,
                     export=args.export, overwrite=args.overwrite, trust_set=args.trust_set,
                     task=args.task, postprocess=args.postprocess, split=args.split, images_dir=args.images_dir)
    write_html_report(args, args.repset, confirm=result)
    return emit(result, args.format, args.output)
