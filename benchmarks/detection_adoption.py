"""The doctor's two detection adoption tests on one real gain: the bundled detector at 4-bit weights, MCT's defaults
vs mixed precision with 1.25× the uniform 4-bit weights memory (the doctor's escalation), calibrated on the first
128 train composites, scored on the 300 val composites against their ground truth. Is the gain adopted by the
paired bootstrap over images of the mAP difference (the doctor's test) and by the sign-flip test on per-image
matched-box F1 (the earlier one)?

    nice -n 10 python benchmarks/detection_adoption.py --data DIR

Writes the composites to ``--data`` first when it holds no ``data.yaml`` (``repcurate.example_detection``, seed 0).
Prints one JSON record.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.composites import load_split, model_inputs, run_model  # noqa: E402


def _detections(model: Any, inputs: np.ndarray) -> list:
    from repcurate.models import tiny_yolo
    from repcurate.tasks.detection import Detections

    return [Detections(b.astype(np.float64), s.astype(np.float64), c)
            for outputs in run_model(model, inputs) for b, s, c in tiny_yolo.postprocess(outputs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, metavar="DIR")
    args = parser.parse_args()
    from repcurate.example_detection import write_detection_dataset
    from repcurate.frameworks.loading import load_model
    from repcurate.models import tiny_yolo
    from repcurate.quantize.mct import MCTQuantizer, MCTSettings
    from repcurate.repset import mct_data_gen
    from repcurate.tasks.base import permutation_significant
    from repcurate.tasks.detection import REFERENCE_SCORE, Detections, coco_map, match_images, matched_f1
    from repcurate.tasks.detection_map import bootstrap_significant

    if not (args.data / "data.yaml").is_file():
        write_detection_dataset(args.data, seed=0)
    model = tiny_yolo.make_model()
    framework = load_model(model).framework
    calibration, _ = model_inputs(args.data, "train", tiny_yolo.preprocess, limit=128)
    inputs, _ = model_inputs(args.data, "val", tiny_yolo.preprocess)
    truth = [Detections(t.numpy().astype(np.float64)[:, 1:], np.ones(len(t)), t.numpy()[:, 0].astype(np.int64))
             for t in (b.reshape(-1, 5) for b in load_split(args.data, "val").boxes)]
    quantizer = MCTQuantizer()
    memory = math.floor(framework.kernel_weights(model) * 4 / 8 * 1.25)
    arms = {}
    for label, settings in (("defaults", MCTSettings(weights_bits=4)),
                            ("mixed", MCTSettings(weights_bits=4, weights_memory=float(memory)))):
        core = settings.core_config(framework.kernel_types(model))
        quantized, _seconds = quantizer.run(framework, model, mct_data_gen(calibration, 8), core,
                                            quantizer.platform("imx500:1.0"), weights_memory=settings.weights_memory)
        arms[label] = _detections(quantized.eval(), inputs)
    mixed, defaults = arms["mixed"], arms["defaults"]
    f1 = [np.array([matched_f1(d.above(REFERENCE_SCORE), r) for d, r in zip(arm, truth)]) for arm in (mixed, defaults)]
    scores = {label: [round(v * 100, 2) for v in coco_map(found, truth)] for label, found in arms.items()}
    print(json.dumps({"weights_memory_bytes": memory, "map50_95_map50": scores,
                      "gain_points": round(scores["mixed"][0] - scores["defaults"][0], 2),
                      "bootstrap_adopts": bootstrap_significant(match_images(mixed, truth), match_images(defaults, truth)),
                      "f1_sign_test_adopts": permutation_significant(f1[0], f1[1])}))


if __name__ == "__main__":
    main()
