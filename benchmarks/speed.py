"""Speed benchmark (issue 5): embedding throughput, embedding cache, selection scaling, check time.

    python benchmarks/speed.py --out benchmarks/results/speed.json               # everything (25 min on 2 busy cores)
    python benchmarks/speed.py --only select --out /tmp/select.json              # some sections
    python benchmarks/speed.py --quick --out /tmp/speed.json                     # CI smoke test (< 3 min)

Every ratio is measured inside one run, each measurement in a child process (``os.wait4`` gives its
wall time and peak RSS):

- ``embed``: ``repcurate build`` (CLI, bundled EfficientNet-Lite0, cold cache) on RGB JPEGs at 224 px
  made from scikit-image's and scikit-learn's bundled photos (seeded random crops, one class per
  photo), against the pure batched forward pass of the same embedder on the same images decoded
  beforehand. Target: end-to-end images/s ≥ 0.85 × forward images/s.
- ``cache``: the same build again on the unchanged folder (warm cache) vs the cold one. Target ≥ 20×.
- ``select``: the selection entry point as ``build`` calls it (``select_representatives`` then
  ``build_projection``, default parameters: 300 images, uniform, k-means) on clustered synthetic
  256-d embeddings of 100 classes; and scikit-learn ``KMeans(n_clusters=quota, n_init=1,
  random_state=0)`` per class with the same quotas, then the row nearest each centre. Targets: 1M
  rows ≤ 60 s, ≥ 5× faster than scikit-learn, peak RSS ≤ 3× the embedding matrix. The scaling
  exponent is the slope of log(time) against log(rows); a plot goes next to ``--out``.
- ``checks``: ``repcurate check`` of a 500-image set (built from the ``embed`` folder) against an
  eval folder of 10,000 other crops, embeddings cached (one untimed run first). Target ≤ 30 s.

``--quick`` shrinks every size (a smoke test of the script; its numbers mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from build_speed import repcurate_exe, run_child, timed_child
from check_speed import time_checks

SECTIONS = ("embed", "cache", "select", "checks")
FULL: dict[str, Any] = {"images": 2000, "eval_images": 10_000, "set_size": 500, "check_runs": 3,
        "select_rows": [10_000, 100_000, 1_000_000]}
#: ``set_size`` None: the checks use the cold build's set (every quick image) instead of building one.
QUICK: dict[str, Any] = {"images": 64, "eval_images": 96, "set_size": None, "check_runs": 1, "select_rows": [1_000, 2_000, 4_000]}
TARGETS = {"embed_ratio": 0.85, "cache_speedup": 20.0, "select_seconds_1m": 60.0, "select_vs_sklearn": 5.0,
           "select_rss_ratio": 3.0, "check_seconds": 30.0}
#: Synthetic embeddings: classes, dimension, modes per class, share of exact duplicates and of outliers.
SYNTH_CLASSES, SYNTH_DIM, SYNTH_MODES, SYNTH_DUPLICATES, SYNTH_OUTLIERS = 100, 256, 8, 0.002, 0.001
IMAGE_SIZE = 224
BATCH = 32


# --------------------------------------------------------------------------------------------- data

def bundled_photos() -> list[tuple[str, np.ndarray]]:
    """RGB photos that ship with scikit-image and scikit-learn (no network): (name, HxWx3 uint8)."""
    import skimage.data as sk
    from sklearn.datasets import load_sample_images

    loaders = {"astronaut": sk.astronaut, "cat": sk.chelsea, "coffee": sk.coffee, "rocket": sk.rocket,
               "hubble": sk.hubble_deep_field, "ihc": sk.immunohistochemistry, "retina": sk.retina,
               "motorcycle": lambda: sk.stereo_motorcycle()[0]}
    photos = []
    for name, load in loaders.items():
        try:
            image = np.asarray(load())
        except Exception:  # noqa: BLE001 - a photo missing from this scikit-image version is left out
            continue
        if image.ndim == 3 and image.shape[2] == 3:
            photos.append((name, image))
    sample = load_sample_images()
    for filename, image in zip(sample.filenames, sample.images):
        photos.append((Path(filename).stem, np.asarray(image)))
    return photos


def write_jpeg_folder(directory: Path, count: int, *, seed: int, prefix: str = "") -> dict[str, int]:
    """``count`` 224×224 RGB JPEGs as ``directory/<photo>/<prefix><i>.jpg``: seeded random crops
    (25–100 % of the shorter side, aspect 0.8–1.25), resized, half mirrored, quality 75–95."""
    from PIL import Image

    photos = bundled_photos()
    rng = np.random.default_rng(seed)
    written: dict[str, int] = {}
    for i in range(count):
        name, image = photos[i % len(photos)]
        height, width = image.shape[:2]
        crop_h = max(16, int(rng.uniform(0.25, 1.0) * min(height, width)))
        crop_w = min(width, max(16, int(crop_h * rng.uniform(0.8, 1.25))))
        top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
        tile = Image.fromarray(image[top:top + crop_h, left:left + crop_w]).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        tile.save(folder / f"{prefix}{i:05d}.jpg", quality=int(rng.integers(75, 96)))
        written[name] = written.get(name, 0) + 1
    return written


def synthetic_embeddings(rows: int, *, seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Clustered float32 embeddings (``SYNTH_DIM``-d, ``SYNTH_CLASSES`` classes in class order, each
    a mixture of ``SYNTH_MODES`` Gaussian modes), labels and 32-hex content fingerprints.

    ``SYNTH_DUPLICATES`` of the rows repeat an earlier row of their class (same vector and
    fingerprint: exact duplicates) and ``SYNTH_OUTLIERS`` point in random directions (far outliers).
    Written class by class into one preallocated matrix, so making it costs no more memory than it.
    """
    rng = np.random.default_rng(seed)
    x = np.empty((rows, SYNTH_DIM), dtype=np.float32)
    per_class = np.full(SYNTH_CLASSES, rows // SYNTH_CLASSES)
    per_class[: rows % SYNTH_CLASSES] += 1
    labels: list[str] = []
    fingerprints = [f"{i:032x}" for i in range(rows)]
    start = 0
    for c, m in enumerate(per_class.tolist()):
        block = x[start:start + m]
        centre = rng.standard_normal(SYNTH_DIM, dtype=np.float32)
        modes = centre + np.float32(0.6) * rng.standard_normal((SYNTH_MODES, SYNTH_DIM), dtype=np.float32)
        rng.standard_normal(out=block, dtype=np.float32)
        block *= np.float32(0.35)
        block += modes[rng.integers(0, SYNTH_MODES, m)]
        far = rng.random(m) < SYNTH_OUTLIERS
        block[far] = np.float32(3.0) * rng.standard_normal((int(far.sum()), SYNTH_DIM), dtype=np.float32)
        for row in np.flatnonzero(rng.random(m) < SYNTH_DUPLICATES).tolist():
            if row > 0:
                source = int(rng.integers(0, row))
                block[row] = block[source]
                fingerprints[start + row] = fingerprints[start + source]
        labels.extend([f"class-{c:03d}"] * m)
        start += m
    return x, labels, fingerprints


# ------------------------------------------------------------------------------------ child processes

def _rss_mib() -> float:
    """Current resident set size of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _timed(module: Any, name: str, totals: dict[str, float]) -> None:
    """Wrap ``module.name`` so the seconds spent in it add up in ``totals[name]``."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - started

    setattr(module, name, wrapper)


def child_select(rows: int, impl: str, size: int) -> dict[str, Any]:
    """Select ``size`` rows from ``rows`` synthetic embeddings with repcurate or scikit-learn."""
    rss_start = _rss_mib()
    started = time.perf_counter()
    x, labels, fingerprints = synthetic_embeddings(rows)
    result: dict[str, Any] = {"rows": rows, "impl": impl, "generate_seconds": round(time.perf_counter() - started, 2),
                              "matrix_mib": round(x.nbytes / 2**20, 1), "rss_start_mib": rss_start,
                              "rss_with_data_mib": _rss_mib()}
    if impl == "repcurate":
        import repcurate.select.selection as selection_module
        from repcurate.select.projection import build_projection
        from repcurate.select.selection import SelectionConfig, select_representatives

        phases: dict[str, float] = {}
        for name in ("pick", "neighbour_distances", "_coverage_stats", "typical_neighbour_distance", "l2_normalize"):
            _timed(selection_module, name, phases)
        config = SelectionConfig(size=size)
        class_labels = cast("list[str | None]", labels)  # the same list: the library allows unlabelled rows, these have none
        started = time.perf_counter()
        selection = select_representatives(x, class_labels, fingerprints, config)
        selected_at = time.perf_counter()
        build_projection(x, class_labels, selection.indices, [q.label for q in selection.quotas], seed=config.seed)
        done = time.perf_counter()
        result.update(seconds=round(done - started, 3), select_seconds=round(selected_at - started, 3),
                      projection_seconds=round(done - selected_at, 3),
                      phase_seconds={k: round(v, 3) for k, v in sorted(phases.items())},
                      selected=len(selection.indices), outliers=len(selection.outliers),
                      exact_duplicates=len(selection.exact_duplicates),
                      quotas=sorted({q.quota for q in selection.quotas}))
    else:
        from sklearn.cluster import KMeans
        from sklearn.metrics import pairwise_distances_argmin

        from repcurate.select.geometry import l2_normalize
        from repcurate.select.quotas import compute_quotas

        started = time.perf_counter()
        xn = l2_normalize(x)
        codes = np.unique(np.asarray(labels), return_inverse=True)[1]
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes))])
        names = sorted(set(labels))
        members: dict[str | None, np.ndarray] = {name: order[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}
        quotas = compute_quotas({name: rows_.size for name, rows_ in members.items()}, size, "uniform")
        picked: list[int] = []
        for quota in quotas:
            rows_ = members[quota.label]
            kmeans = KMeans(n_clusters=quota.quota, n_init=1, random_state=0).fit(xn[rows_])
            picked.extend(rows_[pairwise_distances_argmin(kmeans.cluster_centers_, xn[rows_])].tolist())
        result.update(seconds=round(time.perf_counter() - started, 3), selected=len(picked),
                      quotas=sorted({q.quota for q in quotas}))
    return result


def child_forward(train: Path, batch: int) -> dict[str, Any]:
    """Pure batched forward of the bundled embedder (as ``build`` runs it: allocator tuned,
    channels-last) on every image of ``train``, decoded and preprocessed beforehand."""
    from repcurate.data.sources import scan
    from repcurate.embed.loading import build_embedder
    from repcurate.embed.samples import iter_loaded, stack_samples
    from repcurate.runtime import tune_allocator

    tune_allocator()
    embedder, _ = build_embedder(None, layer=None, preprocess=None)
    source = scan(train)
    started = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    loaded = list(iter_loaded(source.records, source.root, embedder.preprocessor, workers=2, lookahead=2 * batch))
    decode_seconds = time.perf_counter() - started
    decode_cpu = sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) - getattr(cpu, f)
                     for f in ("ru_utime", "ru_stime"))
    batches = [stack_samples(loaded[i:i + batch]) for i in range(0, len(loaded), batch)]
    del loaded
    embedder.embed_batch(batches[0])  # warm-up (one-off allocations, kernel selection)
    started = time.perf_counter()
    for array in batches:
        embedder.embed_batch(array)
    seconds = time.perf_counter() - started
    images = sum(a.shape[0] for a in batches)
    return {"images": images, "batch": batch, "forward_seconds": round(seconds, 2),
            "images_per_second": round(images / seconds, 2),
            "decode_preprocess_seconds": round(decode_seconds, 2), "decode_preprocess_cpu_seconds": round(decode_cpu, 2)}


# -------------------------------------------------------------------------------------------- sections

def _child(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", *args]


def _build_command(train: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [repcurate_exe(), "build", "--train-dir", str(train), "--out", str(out), "--cache-dir", str(cache),
            "--format", "json", "-q", "--overwrite", *extra]


def section_embed(train: Path, work: Path, images: int, state: dict[str, Any]) -> dict[str, Any]:
    forward_run = run_child(_child("forward", str(train), str(BATCH)))
    forward = json.loads(forward_run.stdout)
    forward.update(peak_rss_mib=forward_run.peak_rss_mib, process_cpu_seconds=forward_run.cpu_seconds)
    cold = _cold_build(train, work, state)
    end_to_end = images / cold["seconds"]
    embed_stage = images / cold["stage_seconds"]["embed"]
    return {"images": images, "image_size": IMAGE_SIZE, "batch": BATCH, "forward": forward,
            "build_cold": cold, "command": cold["command"],
            "end_to_end_images_per_second": round(end_to_end, 2),
            "embed_stage_images_per_second": round(embed_stage, 2),
            "ratio_end_to_end": round(end_to_end / forward["images_per_second"], 3),
            "ratio_embed_stage": round(embed_stage / forward["images_per_second"], 3)}


def _cold_build(train: Path, work: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The cold build (empty cache), run once and shared by the embed and cache sections."""
    if "cold" not in state:
        cache = work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        command = _build_command(train, work / "set-cold", cache)
        state["cold"] = {**timed_child(command), "command": " ".join(command)}
    return state["cold"]


def section_cache(train: Path, work: Path, images: int, state: dict[str, Any]) -> dict[str, Any]:
    cold = _cold_build(train, work, state)
    command = _build_command(train, work / "set-warm", work / "cache")
    warm = {**timed_child(command), "command": " ".join(command)}
    return {"images": images, "cold": cold, "warm": warm,
            "speedup": round(cold["seconds"] / warm["seconds"], 2),
            "embed_stage_speedup": round(cold["stage_seconds"]["embed"] / max(warm["stage_seconds"]["embed"], 0.01), 1),
            "identical_output": (work / "set-cold" / "manifest.json").read_bytes()
            == (work / "set-warm" / "manifest.json").read_bytes()}


def _exponent(points: list[tuple[int, float]]) -> float | None:
    """Slope of log(seconds) against log(rows)."""
    if len(points) < 2:
        return None
    rows, seconds = zip(*points)
    return round(float(np.polyfit(np.log(rows), np.log(seconds), 1)[0]), 3)


def section_select(rows_list: list[int], size: int, limit: float, plot: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for impl in ("repcurate", "sklearn"):
        done: list[tuple[int, float]] = []
        for rows in rows_list:
            slope = _exponent(done) if len(done) >= 2 else 1.0
            estimate = done[-1][1] * (rows / done[-1][0]) ** max(slope or 1.0, 1.0) if done else 0.0
            entry: dict[str, Any] = {"rows": rows, "impl": impl}
            if estimate > limit:
                entry.update(skipped=f"estimated {estimate:.0f} s from the smaller sizes (> {limit:.0f} s limit)",
                             estimated_seconds=round(estimate, 1))
                runs.append(entry)
                continue
            child = run_child(_child("select", str(rows), impl, str(size)), timeout=limit + 120)
            if child.timed_out:
                entry.update(skipped=f"did not finish within {limit + 120:.0f} s (killed)")
                runs.append(entry)
                continue
            entry = json.loads(child.stdout)
            entry.update(wall_seconds=round(child.seconds, 2), cpu_seconds=child.cpu_seconds, peak_rss_mib=child.peak_rss_mib,
                         rss_ratio=round(child.peak_rss_mib / entry["matrix_mib"], 2),
                         rss_ratio_above_start=round((child.peak_rss_mib - entry["rss_start_mib"]) / entry["matrix_mib"], 2))
            if entry["seconds"] > limit:
                entry["over_limit"] = True
            done.append((rows, entry["seconds"]))
            runs.append(entry)
    by = {(r["impl"], r["rows"]): r for r in runs}
    comparison = []
    for rows in rows_list:
        ours, theirs = by[("repcurate", rows)], by[("sklearn", rows)]
        if "seconds" in ours and "seconds" in theirs:
            comparison.append({"rows": rows, "sklearn_over_repcurate": round(theirs["seconds"] / ours["seconds"], 2),
                               "sklearn_over_repcurate_kmeans_step": round(
                                   theirs["seconds"] / ours["phase_seconds"]["pick"], 2)})
        elif "seconds" in ours and "estimated_seconds" in theirs:
            comparison.append({"rows": rows, "sklearn_over_repcurate_estimated": round(theirs["estimated_seconds"] / ours["seconds"], 2)})
    result = {"dim": SYNTH_DIM, "classes": SYNTH_CLASSES, "modes_per_class": SYNTH_MODES, "size": size,
              "sklearn_limit_seconds": limit, "runs": runs, "comparison": comparison,
              "exponent": {impl: _exponent([(r["rows"], r["seconds"]) for r in runs if r["impl"] == impl and "seconds" in r])
                           for impl in ("repcurate", "sklearn")},
              "plot": str(plot)}
    _plot_selection(runs, plot)
    return result


def _plot_selection(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for impl, label, style in (("repcurate", "repcurate select (entry point, as build)", "o-"),
                               ("sklearn", "scikit-learn KMeans per class + medoids", "s--")):
        points = [(r["rows"], r["seconds"]) for r in runs if r["impl"] == impl and "seconds" in r]
        if points:
            ax.plot(*zip(*points), style, label=label)
        for r in runs:
            if r["impl"] == impl and "estimated_seconds" in r:
                ax.plot([r["rows"]], [r["estimated_seconds"]], "x", color="grey")
                ax.annotate("sklearn skipped\n(estimate)", (r["rows"], r["estimated_seconds"]), fontsize=7)
    step = [(r["rows"], r["phase_seconds"]["pick"]) for r in runs if r["impl"] == "repcurate" and "phase_seconds" in r]
    if step:
        ax.plot(*zip(*step), "^:", label="repcurate k-means medoid step alone (per-class pick)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("embedding rows (256-d, 100 classes)")
    ax.set_ylabel("seconds")
    ax.set_title("Selection time vs rows (300 images, 2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def section_checks(train: Path, work: Path, eval_images: int, set_size: int | None, runs: int,
                   state: dict[str, Any]) -> dict[str, Any]:
    evald = work / "eval"
    if not evald.is_dir():
        write_jpeg_folder(evald, eval_images, seed=1, prefix="e")
    cache = work / "cache"
    if set_size is None:
        _cold_build(train, work, state)
        repset, build_seconds = work / "set-cold", None
    else:
        repset = work / "set-checks"
        build_seconds = timed_child(_build_command(train, repset, cache, "--size", str(set_size)))["seconds"]
    set_images = len(json.loads((repset / "manifest.json").read_text())["samples"])
    command = [repcurate_exe(), "check", "--repset", str(repset), "--eval-dir", str(evald), "--cache-dir", str(cache),
               "--format", "json", "-q"]
    timing = time_checks(command, runs)
    return {"set_images": set_images, "eval_images": eval_images, "set_build_seconds": build_seconds,
            "command": " ".join(command), **timing, "median_seconds": float(np.median(timing["wall_seconds"]))}


# ------------------------------------------------------------------------------------------------ main

def _versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("repcurate", "torch", "faiss-cpu", "numpy", "scikit-learn", "pillow", "scikit-image"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory / 2**20, 1), "platform": platform.platform()}


def _targets(sections: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(part: str, metric: str, value: Any, target: str, met: bool | None) -> None:
        rows.append({"part": part, "metric": metric, "value": value, "target": target, "met": met})

    if "embed" in sections:
        e = sections["embed"]
        add("embed", "end-to-end / forward images/s", e["ratio_end_to_end"], f">= {TARGETS['embed_ratio']}",
            e["ratio_end_to_end"] >= TARGETS["embed_ratio"])
    if "cache" in sections:
        c = sections["cache"]
        add("cache", "cold / warm build wall", c["speedup"], f">= {TARGETS['cache_speedup']}",
            c["speedup"] >= TARGETS["cache_speedup"])
    if "select" in sections:
        s = sections["select"]
        ours = [r for r in s["runs"] if r["impl"] == "repcurate" and "seconds" in r]
        if ours:
            big = max(ours, key=lambda r: r["rows"])
            add("select", f"seconds at {big['rows']:,} rows", big["seconds"], f"<= {TARGETS['select_seconds_1m']} (1M rows)",
                big["seconds"] <= TARGETS["select_seconds_1m"] if big["rows"] >= 1_000_000 or quick else None)
            add("select", f"peak RSS / matrix at {big['rows']:,} rows", big["rss_ratio"], f"<= {TARGETS['select_rss_ratio']}",
                big["rss_ratio"] <= TARGETS["select_rss_ratio"])
        for comp in s["comparison"]:
            value = comp.get("sklearn_over_repcurate", comp.get("sklearn_over_repcurate_estimated"))
            add("select", f"scikit-learn / repcurate time at {comp['rows']:,} rows", value,
                f">= {TARGETS['select_vs_sklearn']}", value >= TARGETS["select_vs_sklearn"])
    if "checks" in sections:
        k = sections["checks"]
        add("checks", "check wall seconds (median)", k["median_seconds"], f"<= {TARGETS['check_seconds']}",
            k["median_seconds"] <= TARGETS["check_seconds"])
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, child_args = sys.argv[2], sys.argv[3:]
        if kind == "select":
            result = child_select(int(child_args[0]), child_args[1], int(child_args[2]))
        else:
            result = child_forward(Path(child_args[0]), int(child_args[1]))
        sys.stdout.write(json.dumps(result) + "\n")
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="results JSON (the plot is written beside it)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    parser.add_argument("--work", type=Path, default=None, help="keep the generated images here (default: a temp dir)")
    parser.add_argument("--images", type=int, default=None, help="training JPEGs (default 2000, quick 64)")
    parser.add_argument("--select-rows", default=None, help="comma-separated row counts (default 10000,100000,1000000)")
    parser.add_argument("--sklearn-limit", type=float, default=600.0,
                        help="skip scikit-learn where it is estimated to take longer than this (seconds)")
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; use {', '.join(SECTIONS)}")
    sizes = dict(QUICK if args.quick else FULL)
    if args.images:
        sizes["images"] = args.images
    if args.select_rows:
        sizes["select_rows"] = [int(v) for v in args.select_rows.split(",")]
    plot = args.out.with_name(args.out.stem + "_selection.png")

    temp = None if args.work else tempfile.mkdtemp(prefix="repcurate-speed-")
    work = args.work or Path(temp)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "quick": args.quick,
                              "machine": _machine(), "versions": _versions(), "sizes": sizes,
                              "loadavg": {"start": list(os.getloadavg())}, "sections": {}}

    def save() -> None:
        report["targets"] = _targets(report["sections"], args.quick)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    try:
        train = work / "train"
        if any(s in sections for s in ("embed", "cache", "checks")) and not train.is_dir():
            started = time.perf_counter()
            report["train_classes"] = write_jpeg_folder(train, sizes["images"], seed=0)
            report["write_images_seconds"] = round(time.perf_counter() - started, 1)
        state: dict[str, Any] = {}
        for section in SECTIONS:
            if section not in sections:
                continue
            report["loadavg"][section] = list(os.getloadavg())
            started = time.perf_counter()
            if section == "embed":
                result = section_embed(train, work, sizes["images"], state)
            elif section == "cache":
                result = section_cache(train, work, sizes["images"], state)
            elif section == "select":
                result = section_select(sizes["select_rows"], 300, args.sklearn_limit, plot)
            else:
                result = section_checks(train, work, sizes["eval_images"], sizes["set_size"], sizes["check_runs"], state)
            result["section_seconds"] = round(time.perf_counter() - started, 1)
            report["sections"][section] = result
            save()
            sys.stderr.write(f"{section}: done in {result['section_seconds']} s\n")
        report["loadavg"]["end"] = list(os.getloadavg())
        save()
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    sys.stdout.write(json.dumps(report["targets"], indent=2) + "\n")


if __name__ == "__main__":
    main()
