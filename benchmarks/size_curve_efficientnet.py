""""How many images?" for the bundled EfficientNet-Lite0 on real photos: ``confirm --sizes`` at 8-bit, fidelity.

    python benchmarks/size_curve_efficientnet.py [--work DIR] [--out FILE.json] [--sizes 16,32,64,128,300]
        [--random-sets K] [--train-images N] [--eval-images N] [--tolerance T]

Data (offline): the RGB photos bundled with scikit-image and scikit-learn (``benchmarks/speed.py:bundled_photos``,
10 photos), cut by ``benchmarks/speed.py:write_jpeg_folder`` into seeded random 224×224 JPEG crops (25–100 % of
the shorter side, aspect 0.8–1.25, half mirrored, quality 75–95), one folder per source photo: ``--train-images``
training crops (seed 0) and ``--eval-images`` eval crops (seed 1, file names ``eval-*``). The eval crops are other
random crops of the same 10 photos: no file is shared (``confirm`` refuses content overlap), but their pixels can
overlap a training crop's.

The folders name photos, not ImageNet classes, so ``confirm`` scores fidelity to the float model: ``agreement``
(top-1 agreement with the float model's prediction, the headline) and ``kl`` (mean KL divergence of the quantized
model's softmax from the float one), beside the raw outputs' SQNR / cosine.

Run: ``repcurate.build`` a set of the largest size with the bundled EfficientNet-Lite0 (kmeans, uniform over the
10 photo folders), then ``repcurate.confirm(..., sizes=SIZES, random_sets=K, bias_correction=(True,),
weights_bits=8)`` with MCT (the default quantizer, TPC imx500:1.0): for every size the curated set's nested
subset and K random sets (prefixes of K seeded random draws from the training folder). The report (table and
recommendation at ``--tolerance``) is written as JSON and Markdown.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import repcurate
from benchmarks.speed import bundled_photos, write_jpeg_folder
from repcurate.report.confirm_formats import render_markdown


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/repcurate-size-curve-efficientnet"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/size_curve_efficientnet.json"))
    parser.add_argument("--sizes", type=_sizes, default=[16, 32, 64, 128, 300])
    parser.add_argument("--random-sets", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--eval-images", type=int, default=500)
    parser.add_argument("--tolerance", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("PIL", "matplotlib", "tensorflow", "h5py", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = time.perf_counter()
    train, evaluation = args.work / f"train-{args.train_images}", args.work / f"eval-{args.eval_images}"
    timings: dict[str, float] = {}
    for folder, count, seed, prefix in ((train, args.train_images, 0, ""), (evaluation, args.eval_images, 1, "eval-")):
        if not folder.is_dir():
            _log(f"writing {count} photo crops to {folder}")
            write_jpeg_folder(folder, count, seed=seed, prefix=prefix)
    largest = max(args.sizes)
    target = args.work / f"set-{largest}-from-{args.train_images}"
    if not (target / "manifest.json").is_file():
        _log(f"building the {largest}-image curated set with the bundled EfficientNet-Lite0")
        t = time.perf_counter()
        repcurate.build(train, target, size=largest, cache_dir=args.work / "cache", progress=False)
        timings["build_seconds"] = round(time.perf_counter() - t, 1)
    _log(f"confirm: sizes {args.sizes}, {args.random_sets} random sets, MCT 8-bit, bias correction on")
    t = time.perf_counter()
    result = repcurate.confirm(target, "efficientnet-lite0", evaluation, sizes=args.sizes, random_sets=args.random_sets,
                               bias_correction=(True,), weights_bits=8, tolerance=args.tolerance, seed=0,
                               max_eval=args.eval_images, cache_dir=args.work / "cache")
    timings["confirm_seconds"] = round(time.perf_counter() - t, 1)
    markdown = render_markdown(result)
    record = {"command": " ".join(["python", *sys.argv]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU",
              "photos": [name for name, _ in bundled_photos()], "train_images": args.train_images,
              "eval_images": args.eval_images, **timings, "total_seconds": round(time.perf_counter() - started, 1),
              "result": result.to_dict()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(f"### EfficientNet-Lite0, real photo crops, MCT 8-bit, bias correction on "
                                           f"({timings['confirm_seconds']} s)\n\n{markdown}", encoding="utf-8")
    _log(f"done in {time.perf_counter() - started:.0f} s: {args.out}")


if __name__ == "__main__":
    main()
