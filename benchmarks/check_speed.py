"""Time `repcurate check` on a 500-image representative set vs a 10,000-image eval set, embeddings cached.

    python benchmarks/check_speed.py --work /tmp/repcurate-check-bench --out benchmarks/results/check_speed.json

Prepares (once) Fashion-MNIST train/test folders, builds a 500-image set with the bundled model, and
runs `check` once to fill the embedding cache; then times `check` runs (warm cache) as child processes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from build_speed import write_fashion_folder  # noqa: E402


def write_fashion_test_folder(directory: Path) -> int:
    """The 10,000 Fashion-MNIST test images as ``directory/<class>/<index>.png``."""
    import gzip

    from PIL import Image

    from build_speed import FASHION_CLASSES, FASHION_DIR

    with gzip.open(FASHION_DIR / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = directory / FASHION_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"t{index:05d}.png")
    return len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    exe = shutil.which("repcurate") or str(Path(sys.executable).parent / "repcurate")
    work, cache = args.work, args.work / "cache"
    train, evald, repset = work / "train", work / "eval", work / "repset"
    if not train.is_dir():
        write_fashion_folder(train, 10_000)
    if not evald.is_dir():
        write_fashion_test_folder(evald)
    if not repset.is_dir():
        subprocess.run([exe, "build", "--train-dir", str(train), "--out", str(repset), "--size", "500",
                        "--cache-dir", str(cache), "-q"], check=True, stdout=subprocess.DEVNULL)
    command = [exe, "check", "--repset", str(repset), "--eval-dir", str(evald), "--cache-dir", str(cache),
               "--format", "json", "-q"]
    subprocess.run(command, stdout=subprocess.DEVNULL)  # warm the eval embeddings
    runs = []
    for _ in range(args.runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        runs.append(round(time.perf_counter() - started, 2))
        report = json.loads(done.stdout)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "command": " ".join(command), "repset_images": 500, "eval_images": 10_000,
              "wall_seconds": runs, "per_check_seconds": report["seconds"], "verdict": report["verdict"],
              "statuses": {c["id"]: c["status"] for c in report["checks"]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
