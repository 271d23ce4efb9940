"""Scale benchmark (issue 16): build time stops growing with the folder once the candidate pool is full.

    python benchmarks/scale.py folders --work DIR --files 10000 100000 1000000   # write the folders
    python benchmarks/scale.py scan --work DIR --files 10000 ...                 # listing: time + peak RSS
    python benchmarks/scale.py build --work DIR --files 10000 ... --model small|bundled [--pool P]
    python benchmarks/scale.py quality --work DIR [--seeds 0 1 2]                # pool vs full, Fashion-MNIST
    python benchmarks/scale.py clean --work DIR

``folders`` writes ``DIR/files-<N>/class-<cccc>/<iiiiiii>.png``: N synthetic-but-real 28×28 PNGs over 1,000
classes, file i of class c an augmented copy of a Fashion-MNIST training image of class c mod 10 (seeded
shift of up to ±3 pixels in each direction and a crop of up to 2 pixels a side resized back to 28×28), so
files are distinct images; zlib level 1 (fast). It checks free disk space first and logs the generation
time. ``scan`` lists a folder in a child process (``repcurate.data.scan.list_source``) and draws the
default pool, reporting wall time and the child's peak RSS (``ru_maxrss`` from ``os.wait4``). ``build``
runs ``repcurate build --size 300`` as a child process (embedding cache off) and reports wall time, peak
RSS, images embedded and the pool. ``--model small`` is the 24k-parameter Fashion-MNIST CNN of
``benchmarks/models/fashion_cnn.py`` (a user model), ``bundled`` EfficientNet-Lite0.

``quality`` compares pooled and full-folder sets on Fashion-MNIST (60,000 balanced; 14,891 long-tailed,
6000·100^(−i/9) per class), with the CNN: for pools of 8, 16 and 32 × the quota per class (the quota is 30
at ``--size 300`` over 10 classes) and the full folder, the set's coverage measured against the WHOLE
folder (mean / max distance from every image to its nearest set image, unit-normalised embeddings) next
to what the manifest reports (measured against the pool), and the top-1 of the MCT-quantized CNN at 2-bit
weights with bias correction on (imx500:1.0) on the 10,000 test images, the helpers of
``benchmarks/quality.py``. Results go to ``--out`` as JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.build_speed import repcurate_exe, run_child
from benchmarks.fashion_mnist import MODEL_FILES, fashion_arrays, write_folders

log = logging.getLogger("scale")

CLASSES = 1000
SIZE = 300
SMALL_MODEL = f"{MODEL_FILES['torch']}:make_model"
SMALL_PRE = f"{MODEL_FILES['torch']}:preprocess"
#: Disk a synthetic file takes (a 28×28 PNG is ~0.4 KB, but a file takes one 4 KiB block) plus slack.
BYTES_PER_FILE = 4096 + 512


def folder(work: Path, files: int) -> Path:
    return work / f"files-{files}"


def write_folder(out: Path, files: int, *, seed: int = 0) -> dict[str, Any]:
    """``files`` augmented PNGs over 1,000 class folders (file i in class i mod 1000); returns timing."""
    from PIL import Image

    need = files * BYTES_PER_FILE
    free = shutil.disk_usage(out.parent if out.parent.exists() else Path("/")).free
    if need > free * 0.8:
        raise SystemExit(f"{out}: {files} files need about {need / 2**30:.1f} GiB, only {free / 2**30:.1f} GiB free")
    images, labels = fashion_arrays("train")
    by_class = [np.flatnonzero(labels == k) for k in range(10)]
    started = time.perf_counter()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for c in range(CLASSES):
        (partial / f"class-{c:04d}").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    chunk = 10_000
    for start in range(0, files, chunk):
        n = min(chunk, files - start)
        idx = np.arange(start, start + n)
        cls = idx % CLASSES
        src = np.array([by_class[c % 10][j] for c, j in zip(cls, rng.integers(0, 6000, size=n))])
        shifts = rng.integers(-3, 4, size=(n, 2))
        crops = rng.integers(0, 3, size=(n, 4))
        for k in range(n):
            image = np.roll(images[src[k]], tuple(shifts[k]), axis=(0, 1))
            t, le, b, r = crops[k]
            crop = image[t:28 - b, le:28 - r]
            img = Image.fromarray(np.ascontiguousarray(crop))
            if crop.shape != (28, 28):
                img = img.resize((28, 28), Image.Resampling.BILINEAR)
            img.save(partial / f"class-{cls[k]:04d}" / f"{idx[k]:07d}.png", compress_level=1)
        if start and start % 100_000 == 0:
            log.info("%s: %d files in %.0f s", out.name, start, time.perf_counter() - started)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    seconds = time.perf_counter() - started
    log.info("%s: %d files written in %.1f s", out, files, seconds)
    return {"files": files, "seconds": round(seconds, 1), "bytes_estimate": need}


SCAN_CHILD = """
import json, sys, time
from pathlib import Path
from repcurate import tasks
from repcurate.data.scan import list_source, fingerprint_files
from repcurate.select.pool import choose_pool, parse_pool
t0 = time.perf_counter()
listing = list_source(Path(sys.argv[1]), progress=False)
t1 = time.perf_counter()
task = tasks.get("classification")
pool = choose_pool(task.labels(listing.files), parse_pool(sys.argv[2]), size=300, balance="uniform", seed=0,
                   quota_rule=task.quotas)
files = [listing.files[i] for i in pool.rows]
t2 = time.perf_counter()
result = fingerprint_files(listing, files, workers=2)
t3 = time.perf_counter()
print(json.dumps({"files": len(listing.files), "skipped": len(listing.skipped), "pooled": int(pool.rows.size),
                  "list_seconds": round(t1 - t0, 2), "pool_seconds": round(t2 - t1, 2),
                  "fingerprint_seconds": round(t3 - t2, 2), "records": len(result.records)}))
"""


def scan_case(work: Path, files: int, pool: str) -> dict[str, Any]:
    child = run_child([sys.executable, "-c", SCAN_CHILD, str(folder(work, files)), pool])
    row = {"folder_files": files, "pool": pool, **json.loads(child.stdout),
           "wall_seconds": round(child.seconds, 2), "peak_rss_mib": round(child.peak_rss_mib, 1)}
    log.info("scan %s", row)
    return row


def build_case(work: Path, files: int, model: str, pool: str | None) -> dict[str, Any]:
    out = work / f"set-{files}-{model}"
    command = [repcurate_exe(), "build", "--train-dir", str(folder(work, files)), "--out", str(out), "--overwrite",
               "--size", str(SIZE), "--no-cache", "--quiet", "--format", "json"]
    if model == "small":
        command += ["--model", SMALL_MODEL, "--preprocess", SMALL_PRE]
    if pool is not None:
        command += ["--pool", pool]
    child = run_child(command)
    summary = json.loads(child.stdout)
    row = {"folder_files": files, "model": model, "pool": pool or "auto", "wall_seconds": round(child.seconds, 1),
           "peak_rss_mib": round(child.peak_rss_mib, 1), "cpu_seconds": round(child.cpu_seconds, 1),
           "embedded": summary["embedded"], "pooled": summary["pool"]["pooled"], "selected": summary["selected"],
           "stage_seconds": summary["seconds"],
           "images_per_second_embed": round(summary["embedded"] / max(summary["seconds"]["embed"], 1e-9), 1)}
    shutil.rmtree(out, ignore_errors=True)
    log.info("build %s", row)
    return row


def _nearest(all_x: np.ndarray, set_x: np.ndarray) -> np.ndarray:
    from repcurate.select.geometry import l2_normalize, nearest_distances

    return nearest_distances(l2_normalize(all_x), l2_normalize(set_x), k=1)[0][:, 0].astype(np.float64)


def quality(work: Path, seeds: list[int], pools: list[str], out: Path | None = None) -> list[dict[str, Any]]:
    """Pool vs full folder on Fashion-MNIST: coverage against the whole folder and 2-bit top-1 after PTQ."""
    from benchmarks.ptq_backend import backend_for
    from benchmarks.quality import embed_pool, eval_data
    from repcurate.commands.build import build
    from repcurate.frameworks.loading import load_model
    from repcurate.quantize.mct import target_platform
    from repcurate.repset import mct_data_gen

    cache = work / "cache"
    datasets = {"balanced": None, "longtail-100": 100.0}
    for name, rho in datasets.items():
        if not (work / name / "train").exists():
            write_folders(work / name, longtail_rho=rho)
    backend = backend_for("torch")
    model, _ = backend.prepare(load_model(SMALL_MODEL).model)
    eval_x, eval_y = eval_data(work / "balanced" / "eval", SMALL_PRE)
    tpc = target_platform("imx500:1.0")
    rows = []
    for name in datasets:
        train = work / name / "train"
        full = embed_pool(train, SMALL_MODEL, SMALL_PRE, cache)  # every image (cached): the reference population
        row_of = {r.path: i for i, r in enumerate(full.records)}
        for pool in pools:
            for seed in seeds:
                started = time.perf_counter()
                result = build(train, None, size=SIZE, seed=seed, model=SMALL_MODEL, preprocess=SMALL_PRE,
                               cache_dir=cache, pool=pool, progress=False)
                seconds = time.perf_counter() - started
                m = result.manifest
                chosen = [row_of[s["path"]] for s in m["samples"]]
                d = _nearest(full.embeddings, full.embeddings[chosen])
                q_model, _ = backend.quantize(model, mct_data_gen(result.representative_set.tensors, 32),
                                              bias_correction=True, weights_bits=2, tpc=tpc)
                top1 = float(np.mean(backend.outputs(q_model, eval_x).argmax(1) == eval_y))
                row = {"dataset": name, "pool": pool, "seed": seed, "pooled": m["pool"]["pooled"],
                       "files": m["pool"]["files"], "build_seconds": round(seconds, 1),
                       "coverage_vs_folder": {"mean": round(float(d.mean()), 6), "max": round(float(d.max()), 6)},
                       "coverage_vs_pool": {"mean": m["coverage"]["curated"]["mean"],
                                            "max": m["coverage"]["curated"]["max"]},
                       "top1_2bit_bc": round(top1, 6)}
                rows.append(row)
                log.info("quality %s", row)
                if out is not None:  # each row at once: a long run interrupted keeps what it measured
                    with out.open("a") as handle:
                        handle.write(json.dumps({"action": "quality", **row}, sort_keys=True) + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["folders", "scan", "build", "quality", "clean"])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--files", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--model", choices=["small", "bundled"], default="small")
    parser.add_argument("--pool", default=None, help="--pool for build/scan (default: the default rule)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--pools", nargs="*", default=["240", "480", "960", "all"],
                        help="quality: --pool values to compare (240/480/960 = 8/16/32 x the quota of 30)")
    parser.add_argument("--out", type=Path, default=None, help="append the result rows to this JSON-lines file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    if args.action == "folders":
        rows = [{"action": "folders", **write_folder(folder(args.work, n), n)} for n in args.files]
    elif args.action == "scan":
        rows = [{"action": "scan", **scan_case(args.work, n, args.pool or "auto")} for n in args.files]
    elif args.action == "build":
        rows = [{"action": "build", **build_case(args.work, n, args.model, args.pool)} for n in args.files]
    elif args.action == "quality":
        rows = [{"action": "quality", **row} for row in quality(args.work, args.seeds, args.pools, args.out)]
        args.out = None  # already written row by row
    else:
        shutil.rmtree(args.work)
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    sys.stdout.write(text)
    if args.out is not None:
        with args.out.open("a") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
