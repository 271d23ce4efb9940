"""What the eval tensor cache saves: loading an eval folder's preprocessed tensors cold (decode + preprocess, cache
written) and warm (from the cache), as ``confirm`` / ``doctor`` do (``load_tensors_cached``).

    nice -n 10 python benchmarks/eval_tensor_cache.py --images 1000 --out benchmarks/results/eval_tensor_cache.json

The warm load verifies the entry (SHA-256 of the array bytes against the index, as every warm load does);
``checksum_only`` times that verification alone on a fresh map of the same file, and ``warm_unverified`` maps the
entry without it (what a warm load cost before entries carried a checksum).

Images: Fashion-MNIST test images (Debian's ``dataset-fashion-mnist``) as 28×28 PNG files, or with ``--photos``
seeded 500×375 crops of scikit-learn's two sample photos as JPEG files (quality 90, ImageNet-like); preprocessing:
the bundled EfficientNet-Lite0's (256 resize, 224 centre crop: 588 KiB a sample).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repcurate.data.scan import scan_directory
from repcurate.embed.cache_files import checksum as content_checksum
from repcurate.embed.pipeline import load_tensors
from repcurate.embed.tensor_cache import load_tensors_cached
from repcurate.frameworks.loading import default_preprocessor

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_eval(directory: Path, count: int) -> None:
    with gzip.open(FASHION_DIR / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    for index in range(count):
        folder = directory / str(labels[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")


def write_photos(directory: Path, count: int) -> None:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # two 427×640 RGB photos
    rng = np.random.default_rng(0)
    for index in range(count):
        photo = photos[index % 2]
        top, left = int(rng.integers(0, photo.shape[0] - 375)), int(rng.integers(0, photo.shape[1] - 500))
        folder = directory / str(index % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[top:top + 375, left:left + 500]).save(folder / f"{index:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--photos", action="store_true", help="500×375 JPEG photos instead of 28×28 PNGs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    pre = default_preprocessor()
    with tempfile.TemporaryDirectory() as tmp:
        (write_photos if args.photos else write_eval)(Path(tmp) / "eval", args.images)
        scanned = scan_directory(Path(tmp) / "eval")
        timings = {}
        started = time.perf_counter()
        plain = load_tensors(scanned.records, scanned.root, pre)
        timings["no_cache"] = time.perf_counter() - started
        started = time.perf_counter()
        cold = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=Path(tmp) / "cache")
        timings["cold_cache_write"] = time.perf_counter() - started
        started = time.perf_counter()
        warm = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=Path(tmp) / "cache")
        timings["warm"] = time.perf_counter() - started
        started = time.perf_counter()
        checksum = float(warm.sum(dtype=np.float64))  # the warm array is memory-mapped: read every value once
        timings["warm_read_every_value"] = timings["warm"] + time.perf_counter() - started
        [entry] = list((Path(tmp) / "cache").glob("tensors-*/*.npy"))
        started = time.perf_counter()
        unverified = np.load(entry, mmap_mode="c")
        timings["warm_unverified"] = time.perf_counter() - started
        started = time.perf_counter()
        digest = content_checksum(np.load(entry, mmap_mode="r"))
        timings["checksum_only"] = time.perf_counter() - started
        assert digest == json.loads(entry.with_suffix(".json").read_text())["checksum"]
        assert np.array_equal(plain, cold) and np.array_equal(plain, warm) and np.array_equal(plain, unverified)
        size = sum(p.stat().st_size for p in (Path(tmp) / "cache").rglob("*") if p.is_file())
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU",
              "images": args.images, "source": "500x375 JPEG photos" if args.photos else "28x28 Fashion-MNIST PNGs",
              "sample_shape": list(plain.shape[1:]),
              "seconds": {k: round(v, 3) for k, v in timings.items()},
              "speedup_warm_vs_no_cache": round(timings["no_cache"] / timings["warm"], 1),
              "speedup_warm_read_every_value_vs_no_cache": round(timings["no_cache"] / timings["warm_read_every_value"], 1),
              "verification_share_of_no_cache": round(timings["checksum_only"] / timings["no_cache"], 3),
              "cache_bytes": size, "identical": True, "checksum": checksum,
              "loadavg_end": list(os.getloadavg())}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
