"""Power of the doctor's detection adoption test (paired bootstrap over images of the mAP@0.5:0.95 difference,
200 resamples, one-sided 5 %: ``repcurate.tasks.detection_map``) on the bundled detector's 300 val images.

    nice -n 10 python benchmarks/detection_bootstrap_power.py --data DIR [--replicates R] [--out FILE]

Writes the composites to ``--data`` first when it holds no ``data.yaml`` (``repcurate.example_detection``, seed 0).
The bundled detector (``tiny_yolo``) detects on the 300 val images (its postprocess, scores ≥ ``--min-score``);
two arms are derived from those real detections against the real ground-truth boxes: the incumbent moves every
box corner by Gaussian noise of σ = ``--base-jitter`` px, the trial by a smaller σ (a better-localising
quantization), each with fresh noise per replicate. For each trial σ the script reports the mean mAP gain over
the replicates and the share of replicates the test adopts (its power; at the incumbent's own σ: its false-positive
rate). Prints and writes one JSON record.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.composites import load_split, model_inputs, run_model  # noqa: E402


def _detections(root: Path, min_score: float) -> tuple[list, list]:
    """(the bundled detector's detections, the ground-truth boxes) per val image, as repcurate's Detections."""
    from repcurate.models import tiny_yolo
    from repcurate.tasks.detection import Detections

    inputs, _ids = model_inputs(root, "val", tiny_yolo.preprocess)
    found = []
    for outputs in run_model(tiny_yolo.make_model(), inputs):
        for boxes, scores, classes in tiny_yolo.postprocess(outputs, score_threshold=min_score):
            found.append(Detections(boxes.astype(np.float64), scores.astype(np.float64), classes))
    split = load_split(root, "val")
    truth = []
    for table in split.boxes:
        rows = table.numpy().astype(np.float64).reshape(-1, 5)
        truth.append(Detections(rows[:, 1:], np.ones(len(rows)), rows[:, 0].astype(np.int64)))
    return found, truth


def _jittered(found: list, sigma: float, rng: np.random.Generator) -> list:
    from repcurate.tasks.detection import Detections

    return [Detections(d.boxes + rng.normal(0.0, sigma, d.boxes.shape), d.scores, d.classes) for d in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, metavar="DIR")
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--base-jitter", type=float, default=2.0, metavar="PX")
    parser.add_argument("--trial-jitter", default="2.0,1.9,1.8,1.7,1.5", metavar="PX,PX,...")
    parser.add_argument("--min-score", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from repcurate.example_detection import write_detection_dataset
    from repcurate.tasks.detection import coco_map, match_images
    from repcurate.tasks.detection_map import MatchPool, bootstrap_significant

    if not (args.data / "data.yaml").is_file():
        write_detection_dataset(args.data, seed=0)
    started = time.perf_counter()
    found, truth = _detections(args.data, args.min_score)
    float_map = coco_map(found, truth)
    rows = []
    for sigma in (float(s) for s in args.trial_jitter.split(",")):
        gains, adopted = [], 0
        for replicate in range(args.replicates):
            rng = np.random.default_rng([replicate, int(sigma * 1000)])
            trial = match_images(_jittered(found, sigma, rng), truth)
            incumbent = match_images(_jittered(found, args.base_jitter, rng), truth)
            gains.append(MatchPool(trial).score()[0] - MatchPool(incumbent).score()[0])
            adopted += bootstrap_significant(trial, incumbent, seed=replicate)
        rows.append({"trial_jitter_px": sigma, "mean_gain_points": round(float(np.mean(gains)) * 100, 3),
                     "sd_gain_points": round(float(np.std(gains)) * 100, 3), "adopted": adopted,
                     "power": round(adopted / args.replicates, 3)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    record = {"images": len(truth), "detections": int(sum(len(d.scores) for d in found)),
              "float_map50_95": round(float_map[0] * 100, 2), "float_map50": round(float_map[1] * 100, 2),
              "base_jitter_px": args.base_jitter, "replicates": args.replicates, "resamples": 200, "alpha": 0.05,
              "min_score": args.min_score, "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    text = json.dumps(record, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
