"""``repcurate export``: a set as the files a toolchain's own command-line tool reads."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repcurate.commands.export import export_set
from repcurate.export.base import LAYOUTS
from repcurate.export.registry import EXPORTERS

from .common import EXIT_CODES_HELP, add_common_options, emit_json

EXAMPLES = """examples:
  repcurate export --repset repset --to modelopt --onnx-model model.onnx --out calib-modelopt
  python -m modelopt.onnx.quantization --onnx_path model.onnx --calibration_data_path calib-modelopt/calibration_data.npz
  repcurate export --repset repset --to npz --input-name pixels --out calib-npz
  repcurate export --repset repset --to tflite --out calib-tflite     (channels-last .npy)
  ONNX Runtime and OpenVINO NNCF read no calibration file: use repcurate.load(DIR).ort_reader() / .nncf_dataset()

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    formats = "\n".join(f"  {name:9} {exporter.summary}" for name, exporter in EXPORTERS.items())
    parser = subparsers.add_parser(
        "export", help="write a set as the files a toolchain's own tool reads (ModelOpt .npz, TFLite .npy)",
        description="Write the samples of a set (verified on load) into the folder --out, atomically, as one toolchain's "
                    "calibration files, with export.json (what they hold) and USAGE.txt (the command that reads them). "
                    f"Formats:\n{formats}",
        epilog=EXAMPLES + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repset", required=True, type=Path, metavar="DIR", help="a `repcurate build` output")
    parser.add_argument("--to", required=True, choices=list(EXPORTERS), metavar="FORMAT",
                        help=f"the format: {', '.join(EXPORTERS)}")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the folder to write (atomically)")
    parser.add_argument("--onnx-model", type=Path, default=None, metavar="FILE.onnx",
                        help="the model the set will calibrate: its input name keys the data, its input shape picks the layout")
    parser.add_argument("--input-name", default=None, metavar="NAME",
                        help="the model input the set feeds (needed without --onnx-model for npz, or for a model with several inputs)")
    parser.add_argument("--layout", choices=LAYOUTS, default=None,
                        help="sample layout to write (default: what --onnx-model takes, else the format's, else as stored)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out when repcurate wrote it")
    add_common_options(parser)
    parser.set_defaults(action=run)


def run(args: argparse.Namespace) -> int:
    result = export_set(args.repset, args.to, args.out, onnx_model=args.onnx_model, input_name=args.input_name,
                        layout=args.layout, overwrite=args.overwrite)
    if args.format == "json":
        emit_json(result.to_dict())
    else:
        record = result.record
        sys.stdout.write(f"wrote {result.out} ({result.format}): {', '.join(result.files)}; "
                         f"{record['shape'][0]} samples of {tuple(record['shape'][1:])} float32"
                         f"{', ' + record['layout'] if record['layout'] else ''}"
                         f"{', key ' + repr(record['input_name']) if record['input_name'] else ''}; "
                         f"see {result.out / 'USAGE.txt'}\n")
    return 0
