"""``repcurate confirm`` with a second toolchain, and "how many images?", on long-tailed Fashion-MNIST.

    python benchmarks/confirm_toolchains.py [--work DIR] [--out FILE.json] [--random-sets K] [--quick]

(a) ONNX Runtime: ``confirm --quantizer onnxruntime`` (quantize_static, QDQ, per-channel weights, int8
    activations; calibration MinMax / Entropy / Percentile) of the PyTorch Fashion-MNIST CNN
    (``benchmarks/models/fashion_cnn.py``) with a 128-image curated set (kmeans, built with that CNN)
    against K random 128-image sets and the first 128 files, at 8-bit and 4-bit weights.
(b) The size curve: ``confirm --sizes 16,32,64,128,256`` with MCT, 2-bit weights, bias correction on, from a
    256-image curated set (nested subsets) and K random sets per size; the recommendation at ``--tolerance``.

Training folder: the long-tailed Fashion-MNIST folder of ``benchmarks/quality.py`` (6000·100^(−i/9) images of
class i, 14,891 images); evaluation on a seeded 2,000-image sample of the 10,000 balanced test images
(``max_eval=2000``, to fit 15 minutes on 2 shared cores). Everything runs through the public library API
(``repcurate.build`` / ``repcurate.confirm``); the reports are written as JSON and Markdown.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import repcurate
from benchmarks.fashion_mnist import MODEL_FILES, write_folders
from repcurate.report.confirm_formats import render_markdown

TORCH_MODEL = f"{MODEL_FILES['torch']}:make_model"
TORCH_PRE = f"{MODEL_FILES['torch']}:preprocess"
SIZES = [16, 32, 64, 128, 256]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/repcurate-confirm-toolchains"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/confirm_toolchains.json"))
    parser.add_argument("--random-sets", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="a tiny folder, for a smoke run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    data = args.work / "longtail-100"
    if not (data / "fashion_mnist.json").is_file():
        _log("writing the long-tailed Fashion-MNIST folders")
        write_folders(data, longtail_rho=100.0, train_per_class=300 if args.quick else None,
                      eval_count=500 if args.quick else None)
    sets = {}
    for size in (128, 256):
        target = args.work / f"set-{size}"
        if not (target / "manifest.json").is_file():
            _log(f"building the {size}-image curated set")
            repcurate.build(data / "train", target, size=size, model=TORCH_MODEL, preprocess=TORCH_PRE,
                            cache_dir=args.work / "cache", progress=False)
        sets[size] = target
    common = {"random_sets": args.random_sets, "seed": 0, "max_eval": 2000, "trust_set": True}
    results: dict[str, dict] = {}
    for bits in (8, 4):
        _log(f"(a) ONNX Runtime, {bits}-bit weights")
        t = time.perf_counter()
        result = repcurate.confirm(sets[128], TORCH_MODEL, data / "eval", quantizer="onnxruntime", weights_bits=bits,
                                   **common)
        results[f"onnxruntime-{bits}bit"] = {**result.to_dict(), "wall_seconds": round(time.perf_counter() - t, 1),
                                             "markdown": render_markdown(result)}
    _log("(b) size curve, MCT 2-bit, bias correction on")
    t = time.perf_counter()
    result = repcurate.confirm(sets[256], TORCH_MODEL, data / "eval", weights_bits=2, bias_correction=(True,),
                               sizes=SIZES, tolerance=args.tolerance, **common)
    results["mct-2bit-sizes"] = {**result.to_dict(), "wall_seconds": round(time.perf_counter() - t, 1),
                                 "markdown": render_markdown(result)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(sys.argv), "total_seconds": round(time.perf_counter() - started, 1),
              "results": results}
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text("\n\n".join(f"### {name} ({r['wall_seconds']} s)\n\n{r['markdown']}"
                                                       for name, r in results.items()), encoding="utf-8")
    _log(f"done in {time.perf_counter() - started:.0f} s: {args.out}")


if __name__ == "__main__":
    main()
