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
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from build_speed import repcurate_exe, run_child, write_fashion_folder


def write_fashion_test_folder(directory: Path) -> int:
    """The 10,000 Fashion-MNIST test images as ``directory/<class>/<index>.png``."""
    import gzip

    from build_speed import FASHION_CLASSES, FASHION_DIR
    from PIL import Image

    with gzip.open(FASHION_DIR / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = directory / FASHION_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"t{index:05d}.png")
    return len(images)


def time_checks(command: list[str], runs: int) -> dict[str, object]:
    """One untimed ``check`` run that fills the embedding cache, then ``runs`` timed ones (children).

    ``command`` is a ``repcurate check ... --format json`` command line; exit 1 (a failed gate) is a
    result, not an error.
    """
    warm_up = run_child(command, ok_codes=(0, 1))
    walls, peaks = [], []
    for _ in range(runs):
        run = run_child(command, ok_codes=(0, 1))
        walls.append(round(run.seconds, 2))
        peaks.append(run.peak_rss_mib)
    report = json.loads(run.stdout)
    return {"warm_up_seconds": round(warm_up.seconds, 2), "wall_seconds": walls, "peak_rss_mib": peaks,
            "per_check_seconds": report["seconds"], "verdict": report["verdict"],
            "statuses": {c["id"]: c["status"] for c in report["checks"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    exe = repcurate_exe()
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
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "command": " ".join(command), "repset_images": 500, "eval_images": 10_000,
              **time_checks(command, args.runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
