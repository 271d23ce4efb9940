"""Embedding throughput of the local engine vs the Ray engine with 1 and 2 actors on a local Ray cluster, and the
bf16-autocast vs fp32 embedding tolerance of the bundled EfficientNet-Lite0 on the CPU.

    nice -n 10 python benchmarks/ray_engine.py --images 256 --out benchmarks/results/ray_engine.json

Images: Fashion-MNIST training images (Debian's ``dataset-fashion-mnist``) when present, else scikit-learn's digits,
written as PNG files. Model: the bundled EfficientNet-Lite0 (224 px), batch 32, no cache. The Ray cluster is
``ray.init(num_cpus=2)`` on this machine; its start-up is timed apart from the runs. Each run includes the actors'
model loading (a real cost of every Ray build).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repcurate.data.scan import scan_directory
from repcurate.embed import engines
from repcurate.embed.engine import EngineSettings
from repcurate.embed.loading import build_embedder
from repcurate.embed.pipeline import embed_records


def write_images(directory: Path, count: int) -> str:
    from benchmarks.build_speed import FASHION_DIR, write_fashion_folder

    if (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        write_fashion_folder(directory, count)
        return "fashion-mnist"
    from repcurate.example_data import write_digits_folder

    write_digits_folder(directory, per_class=dict.fromkeys(range(10), -(-count // 10)))
    return "digits"


def timed_run(records, root, engine_name: str, actors: int | None) -> dict:
    embedder, _ = build_embedder(None, layer=None, preprocess=None, device="cpu")
    engine = engines.create(engine_name, EngineSettings(actors=actors))
    started = time.perf_counter()
    run = embed_records(records, root, embedder, cache_dir=None, batch_size=32, workers=2, progress=False, engine=engine)
    seconds = time.perf_counter() - started
    return {"engine": engine_name, "actors": actors, "images": len(run.records), "seconds": round(seconds, 2),
            "images_per_s": round(len(run.records) / seconds, 1), "vectors": run.vectors}


def bf16_tolerance(records, root, count: int) -> dict:
    """Cosine similarity and max |Δ| of bf16-autocast embeddings against fp32 ones (CPU autocast)."""
    import torch

    from repcurate.embed.pipeline import load_tensors

    embedder, _ = build_embedder(None, layer=None, preprocess=None, device="cpu")
    x = load_tensors(records[:count], root, embedder.preprocessor)
    fp32 = np.vstack([embedder.embed_batch(x[i:i + 32]) for i in range(0, len(x), 32)])
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = np.vstack([embedder.embed_batch(x[i:i + 32]) for i in range(0, len(x), 32)])
    bf16_seconds = time.perf_counter() - started
    started = time.perf_counter()
    np.vstack([embedder.embed_batch(x[i:i + 32]) for i in range(0, len(x), 32)])
    fp32_seconds = time.perf_counter() - started
    cosine = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    neighbours = {}
    for name, v in (("fp32", fp32), ("bf16", bf16)):
        d = ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        neighbours[name] = d.argmin(1)
    return {"images": len(x), "cosine_min": round(float(cosine.min()), 5), "cosine_mean": round(float(cosine.mean()), 5),
            "max_abs_diff": round(float(np.abs(fp32 - bf16).max()), 4),
            "fp32_max_abs": round(float(np.abs(fp32).max()), 4),
            "same_nearest_neighbour": round(float((neighbours["fp32"] == neighbours["bf16"]).mean()), 4),
            "fp32_seconds": round(fp32_seconds, 2), "bf16_seconds": round(bf16_seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--bf16-images", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        source = write_images(Path(tmp) / "train", args.images)
        scanned = scan_directory(Path(tmp) / "train")
        records = scanned.records[: args.images]
        rows = [timed_run(records, scanned.root, "local", None)]
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        cluster_start = time.perf_counter() - started
        try:
            for actors in (1, 2):
                rows.append(timed_run(records, scanned.root, "ray", actors))
        finally:
            ray.shutdown()
        reference = rows[0].pop("vectors")
        for row in rows[1:]:
            vectors = row.pop("vectors")
            row["max_abs_diff_vs_local"] = float(np.abs(vectors - reference).max())
        precision = bf16_tolerance(records, scanned.root, args.bf16_images)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU",
              "source": source, "model": "efficientnet-lite0 (bundled), batch 32, 224 px, no cache",
              "ray_cluster_start_seconds": round(cluster_start, 2), "runs": rows, "bf16_autocast_vs_fp32_cpu": precision}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
