"""The doctor's detection-head fix measured on the bundled detector with its box decoding inside the model:
float vs MCT defaults vs the head fix, mAP@0.5:0.95 and mAP@0.5 on the 300 val composites.

    nice -n 10 python benchmarks/doctor_head.py --data DIR [--calibration N] [--weights-bits B] [--out FILE]

Writes the composites to ``--data`` first when it holds no ``data.yaml`` (``repcurate.example_detection``, seed 0).
Model: ``repcurate.models.tiny_yolo:make_decoded_model`` (boxes decoded from fixed anchors and strides inside the
network, sigmoid class scores). Calibration: the first ``--calibration`` train images. Arms, each one MCT PTQ
run through repcurate's own configuration code: MCT's defaults on IMX500 TPC 1.0, MCT's defaults on TPC 4.0, and
the head fix (the box-decoding nodes the doctor finds, 16-bit activations there, ``concat_threshold_update``) on
TPC 4.0. Scores with pycocotools against the val ground truth, and runs the doctor's adoption test (paired
bootstrap over images of the mAP difference) of the head fix over TPC 1.0's defaults. Prints and writes one JSON
record.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.composites import load_split, model_inputs, run_model  # noqa: E402


def _detections(model: Any, inputs: np.ndarray) -> list:
    from repcurate.models import tiny_yolo
    from repcurate.tasks.detection import Detections

    found = []
    for outputs in run_model(model, inputs):
        for boxes, scores, classes in tiny_yolo.postprocess_decoded(outputs):
            found.append(Detections(boxes.astype(np.float64), scores.astype(np.float64), classes))
    return found


def _map(found: list, truth: list) -> dict[str, float]:
    from repcurate.tasks.detection import coco_map

    map_all, map_50 = coco_map(found, truth)
    return {"map50_95": round(map_all * 100, 2), "map50": round(map_50 * 100, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, metavar="DIR")
    parser.add_argument("--calibration", type=int, default=128)
    parser.add_argument("--weights-bits", type=int, default=8, choices=(8, 4, 2))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from repcurate.commands.doctor.head import box_decoding
    from repcurate.example_detection import write_detection_dataset
    from repcurate.frameworks.loading import load_model
    from repcurate.frameworks.torch_trace import trace
    from repcurate.models import tiny_yolo
    from repcurate.quantize.mct import MCTQuantizer, MCTSettings
    from repcurate.repset import mct_data_gen
    from repcurate.tasks.detection import Detections, match_images
    from repcurate.tasks.detection_map import bootstrap_significant

    if not (args.data / "data.yaml").is_file():
        write_detection_dataset(args.data, seed=0)
    torch.manual_seed(0)
    model = tiny_yolo.make_decoded_model()
    framework = load_model(model).framework
    calibration, _ = model_inputs(args.data, "train", tiny_yolo.preprocess, limit=args.calibration)
    inputs, _ = model_inputs(args.data, "val", tiny_yolo.preprocess)
    truth = [Detections(t.numpy().astype(np.float64)[:, 1:], np.ones(len(t)), t.numpy()[:, 0].astype(np.int64))
             for t in (b.reshape(-1, 5) for b in load_split(args.data, "val").boxes)]
    graph = trace(model, calibration[:8]).graph
    head = box_decoding(graph.kinds(), graph.inputs()) if graph is not None else None
    if head is None:
        raise SystemExit("no box decoding found in the model")
    quantizer = MCTQuantizer()
    arms = {"MCT defaults, TPC 1.0": MCTSettings(weights_bits=args.weights_bits, tpc="imx500:1.0"),
            "MCT defaults, TPC 4.0": MCTSettings(weights_bits=args.weights_bits, tpc="imx500:4.0"),
            "head fix, TPC 4.0": MCTSettings(weights_bits=args.weights_bits, tpc="imx500:4.0",
                                             manual_16bit=head.decoding).with_quantization(concat_threshold_update=True)}
    record: dict[str, Any] = {"model": "repcurate.models.tiny_yolo:make_decoded_model", "val_images": len(truth),
                              "calibration_images": len(calibration), "weights_bits": args.weights_bits,
                              "box_decoding_nodes": list(head.decoding), "float": _map(_detections(model, inputs), truth),
                              "arms": []}
    matches = {}
    for label, settings in arms.items():
        started = time.perf_counter()
        core = settings.core_config(framework.kernel_types(model))
        q_model, seconds = quantizer.run(framework, model, mct_data_gen(calibration, 8), core,
                                         quantizer.platform(settings.tpc))
        bits = framework.mct.activation_bits(q_model)
        found = _detections(q_model.eval(), inputs)
        matches[label] = match_images(found, truth)
        record["arms"].append({"arm": label, "tpc": settings.tpc, **_map(found, truth),
                               "box_decoding_bits": sorted({bits[n] for n in head.decoding if n in bits}),
                               "ptq_seconds": round(seconds, 1), "seconds": round(time.perf_counter() - started, 1)})
        print(json.dumps(record["arms"][-1]), file=sys.stderr, flush=True)
    record["head_fix_adopted_over_defaults"] = bootstrap_significant(matches["head fix, TPC 4.0"],
                                                                     matches["MCT defaults, TPC 1.0"])
    text = json.dumps(record, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
