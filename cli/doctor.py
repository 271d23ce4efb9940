"""``repcurate doctor``: run MCT's troubleshooting steps on a model and measure every candidate fix."""
from __future__ import annotations

import argparse
from pathlib import Path

from repcurate.quantize.registry import get as quantizer_named
from repcurate.report import views
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
    stdout_to_stderr,
    write_html_report,
)

EXAMPLES = """examples:
  repcurate doctor --model model.py:make_model --repset repset --eval-dir data/val
  repcurate doctor --model model.py:make_model --repset repset --eval-dir data/val --weights-bits 4 --tolerance 2 --format markdown
  repcurate doctor --model model.py:make_model --repset repset --eval-dir data/val --budget-minutes 10 --format json --output doctor.json

exit status: 0 when the recommended configuration is within --tolerance of the float model, 1 when it is not
(or MCT cannot read the model); the report is written either way.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="run MCT's troubleshooting steps and measure each fix on held-out data",
        description="Check the representative set, preflight torch.fx, then measure a detector's 16-bit box decoding "
                    "(IMX500 TPC 4.0), bias correction, shift-negative "
                    "correction, z_threshold outlier removal and concat threshold updates where the float model shows "
                    "the problem; localise culprit layers with MCT's network editor; escalate to mixed precision and "
                    "GPTQ. Findings are ranked by measured gain; the recommended CoreConfig is printed as Python.",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="the model to quantize (file.py:factory, module:factory, efficientnet-lite0, .keras/.h5, "
                             "an Ultralytics YOLO checkpoint best.pt)")
    parser.add_argument("--repset", required=True, type=Path, metavar="DIR", help="a repcurate build directory")
    parser.add_argument("--eval-dir", required=True, type=Path, metavar="EVAL",
                        help="held-out images, disjoint from the set:"
                             " a folder, a CSV/JSONL list, a YOLO data.yaml (val split), a COCO JSON or a segmentation folder")
    add_eval_source_options(parser)
    parser.add_argument("--tolerance", type=float, default=1.0, metavar="POINTS", help="accepted loss vs float, in metric points (default: 1)")
    parser.add_argument("--budget-minutes", type=float, default=30.0, metavar="M", help="time budget for PTQ experiments (default: 30)")
    parser.add_argument("--weights-bits", type=int, choices=quantizer_named("mct").weight_bits, default=8,
                        help="kernel bits of every conv/linear (default: 8)")
    parser.add_argument("--tpc", default="imx500:1.0", help="target platform capabilities device:version (default: imx500:1.0)")
    parser.add_argument("--preprocess", default=None, metavar="SPEC",
                        help="model input pipeline (default: the set's own; code the set names runs only with --trust-set)")
    parser.add_argument("--task", default=None, choices=tuple(TASKS),
                        help="how outputs are scored (default: detection with --postprocess, else classification for one "
                             "score vector per image, fidelity (SQNR, cosine to the float model) otherwise)")
    parser.add_argument("--postprocess", default=None, metavar="SPEC",
                        help="detector decoding, file.py:fn: model outputs (list of arrays) -> per image (boxes xyxy in "
                             "input pixels, scores, classes)")
    parser.add_argument("--class-map", type=Path, default=None, metavar="FILE", help="JSON {eval class name: model class index}")
    parser.add_argument("--max-eval", type=int, default=2000, help="eval images used at most (default: 2000)")
    parser.add_argument("--min-gain", type=float, default=0.5, metavar="POINTS",
                        help="smallest gain that changes the recommendation (default: 0.5; it must also be significant)")
    parser.add_argument("--gptq-epochs", type=int, default=5, help="GPTQ epochs when escalating (default: 5)")
    parser.add_argument("--no-checks", action="store_true", help="skip the representative-set check suite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32, metavar="N",
                        help="representative images per batch fed to MCT's statistics collection and the doctor's own "
                             "activation statistics (default: 32; lower it when a large model at a large input size runs out of memory)")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="write the report here (atomically)")
    add_device_option(parser, "the float and quantized models (MCT included)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="cache of the decoded eval tensors (default: $REPCURATE_CACHE_DIR or ~/.cache/repcurate)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the eval tensor cache")
    add_report_option(parser)
    add_trust_option(parser)
    add_common_options(parser, formats=views.formats("doctor"))
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    from repcurate.commands.doctor import doctor

    guard_eval_command_reports(args)
    with stdout_to_stderr():  # MCT and its solver print; stdout carries only the report
        result = doctor(args.model, args.repset, args.eval_dir, tolerance=args.tolerance, budget_minutes=args.budget_minutes,
                        weights_bits=args.weights_bits, tpc=args.tpc, preprocess=args.preprocess, class_map=args.class_map,
                        max_eval=args.max_eval, min_gain=args.min_gain, gptq_epochs=args.gptq_epochs,
                        run_checks=not args.no_checks, seed=args.seed, batch_size=args.batch_size, trust_set=args.trust_set,
                        task=args.task, postprocess=args.postprocess,
                        device=args.device, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                        split=args.split, images_dir=args.images_dir)
    write_html_report(args, args.repset, doctor=result.to_dict())
    return emit(result, args.format, args.output)
