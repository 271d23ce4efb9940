"""Quality benchmark: does a curated set give a better MCT-quantized model than what people do today?

    python benchmarks/quality.py --out benchmarks/results/quality.json [--work DIR] [--quick] [--jobs N]

Data: Fashion-MNIST (Debian ``dataset-fashion-mnist``) written as class folders of PNGs, (a) balanced
(6,000 per class) and (b) long-tailed (6000 · 100^(−i/9) images of class i, the CIFAR-10-LT
construction); evaluation on the balanced 10,000-image test split. Model: the seeded CNN of
``benchmarks/models/fashion_cnn.py`` (PyTorch), plus its Keras twin for one row.

Arms per set size N: repcurate's strategies (``select_representatives``, the very code ``build``
runs, on embeddings from the very pipeline ``build`` uses), K random sets drawn uniformly from the
training folder (what ``confirm`` calls random), the first N files in file order (what NNCF /
ONNX Runtime examples do; with class folders that is one class), a single-class set, and
facility-location selection from ``apricot-select`` with repcurate's own class quotas (an outside
method a user might pick instead). Every arm is quantized with MCT PTQ (imx500:1.0) at each weight
bit-width, bias correction on and off, and scored top-1 on the eval images.

Rows with a planted preprocessing mismatch show what ``repcurate check`` says about such a set
before any PTQ run, and what the mismatch costs after PTQ.

``--quick`` (< 5 minutes) shrinks everything; CI runs it as a smoke test of this script. ``--jobs N``
(default 2 on a 2-core machine) runs the PTQ grid in N worker processes with the cores shared out:
MCT's PTQ is mostly single-threaded Python, so two 1-thread workers keep both cores busy where one
2-thread process leaves one idle during every PTQ (measured: 20 % more runs per minute). Every
measured run is appended to ``<out>.rows.jsonl`` at once; an interrupted run resumes from it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fashion_mnist import CLASS_FOLDERS, MODEL_FILES, write_folders
from benchmarks.worker_pool import spawn_pool
from repcurate.commands.confirm import verdict_words
from repcurate.data.scan import ImageRecord
from repcurate.data.sources import scan
from repcurate.embed.loading import build_embedder
from repcurate.embed.pipeline import embed_records, load_tensors
from repcurate.select.quotas import compute_quotas
from repcurate.select.selection import SelectionConfig, select_representatives

log = logging.getLogger("quality")

TORCH_MODEL = f"{MODEL_FILES['torch']}:make_model"
TORCH_PRE = f"{MODEL_FILES['torch']}:preprocess"
KERAS_MODEL = f"{MODEL_FILES['keras']}:make_model"
KERAS_PRE = f"{MODEL_FILES['keras']}:preprocess"
MISMATCH_FILE = Path(__file__).resolve().with_name("models") / "fashion_mismatch.py"
DATASETS = {"balanced": None, "longtail-100": 100.0}  # name → long-tail ratio ρ
SINGLE_CLASS = "1-trouser"  # plentiful in both datasets; first-N already is the first class folder

FULL: dict[str, Any] = {"sizes": [16, 32, 64, 128, 256], "bits": [8, 4, 2], "random_sets": 10, "strategies": ["kmeans", "kcenter"],
        "train_per_class": None, "eval_count": None, "mismatch_train_per_class": 300, "keras_sizes": [32],
        "keras_bits": [8, 2], "population": 1024}
QUICK: dict[str, Any] = {"sizes": [16], "bits": [2], "random_sets": 2, "strategies": ["kmeans", "kcenter"],
         "train_per_class": 40, "eval_count": 200, "mismatch_train_per_class": 20, "keras_sizes": [16],
         "keras_bits": [2], "population": 100}


@dataclass
class Pool:
    """A training folder's usable images, their labels and embeddings (row i ↔ records[i])."""

    root: Path
    records: list[ImageRecord]
    labels: list[str | None]
    embeddings: np.ndarray
    preprocess: str


def embed_pool(train: Path, model: str, preprocess: str, cache: Path) -> Pool:
    """Scan and embed ``train`` exactly as ``repcurate build`` does (cached)."""
    source = scan(train)
    embedder, _ = build_embedder(model, layer=None, preprocess=preprocess)
    run = embed_records(source.records, source.root, embedder, cache_dir=cache, progress=False)
    return Pool(source.root, run.records, [r.label for r in run.records], run.vectors, preprocess)


def curated_arm(pool: Pool, strategy: str, size: int) -> list[int]:
    config = SelectionConfig(size=size, strategy=strategy, seed=0)
    fingerprints = [r.fingerprint for r in pool.records]
    return select_representatives(pool.embeddings, pool.labels, fingerprints, config).indices


def facility_location_rankings(pool: Pool, sizes: list[int]) -> dict[str | None, list[int]] | None:
    """apricot-select's facility location per class, run once for the class's largest quota over
    ``sizes``: the lazy greedy ranking is nested (its first k picks are the k-image selection, checked
    on the balanced pool), so every N takes a prefix instead of refitting the class."""
    try:
        from apricot import FacilityLocationSelection
    except ImportError:
        return None
    x = pool.embeddings / np.maximum(np.linalg.norm(pool.embeddings, axis=1, keepdims=True), 1e-12)
    members = _class_rows(pool)
    available = {lab: len(rows) for lab, rows in members.items()}
    largest: dict[str | None, int] = {}
    for size in sizes:
        for class_quota in compute_quotas(available, size):
            largest[class_quota.label] = max(largest.get(class_quota.label, 0), class_quota.quota)
    rankings: dict[str | None, list[int]] = {}
    for label, quota in largest.items():
        rows, quota = members[label], min(quota, len(members[label]))
        if len(rows) < 2 or quota < 1:
            rankings[label] = [int(r) for r in rows[:quota]]
            continue
        selector = FacilityLocationSelection(quota, metric="euclidean", optimizer="lazy", random_state=0)
        selector.fit(x[rows].astype(np.float64))
        rankings[label] = [int(rows[i]) for i in selector.ranking[:quota]]
    return rankings


def facility_location_arm(pool: Pool, size: int, rankings: dict[str | None, list[int]]) -> list[int]:
    """The facility-location set of ``size`` images: repcurate's uniform class quotas, each class's
    ranking cut to its quota."""
    available = {lab: len(rows) for lab, rows in _class_rows(pool).items()}
    return [row for quota in compute_quotas(available, size) for row in rankings[quota.label][:quota.quota]]


def _class_rows(pool: Pool) -> dict[str | None, np.ndarray]:
    labels = np.array(pool.labels, dtype=object)
    return {lab: np.flatnonzero(labels == lab) for lab in sorted(set(pool.labels), key=str)}


def baseline_arms(pool: Pool, size: int, random_sets: int) -> dict[str, list[int]]:
    """K uniform random sets, the first N files, and N random images of one class."""
    n = len(pool.records)
    arms = {f"random-{k}": [int(i) for i in np.random.default_rng([size, k]).choice(n, size, replace=False)]
            for k in range(random_sets)}
    arms["first-n"] = list(range(min(size, n)))
    single = np.array([i for i, lab in enumerate(pool.labels) if lab == SINGLE_CLASS])
    arms["single-class"] = [int(i) for i in np.random.default_rng(size).choice(single, min(size, len(single)), replace=False)]
    return arms


def eval_data(eval_dir: Path, preprocess: str) -> tuple[np.ndarray, np.ndarray]:
    from repcurate.data.preprocess import make_preprocessor

    source = scan(eval_dir)
    x = load_tensors(source.records, source.root, make_preprocessor(preprocess))
    return x, np.array([CLASS_FOLDERS.index(r.label) for r in source.records])


class Checkpoint:
    """Every measured row, appended as a JSON line next to ``--out`` the moment it exists, so an interrupted
    run resumes where it stopped instead of starting the grid again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lines = path.read_text().splitlines() if path.exists() else []
        self.rows = {self.key(row): row for row in map(json.loads, filter(None, lines))}
        if self.rows:
            log.info("resuming from %s: %d runs already measured", path, len(self.rows))

    @staticmethod
    def key(row: dict[str, Any]) -> tuple:
        return row["dataset"], row["framework"], str(row["size"]), row["arm"], row["bits"], row["bias_correction"]

    def get(self, context: dict[str, Any], arm: str, bits: int, bc: bool) -> dict[str, Any] | None:
        return self.rows.get(self.key({**context, "arm": arm, "bits": bits, "bias_correction": bc}))

    def add(self, row: dict[str, Any]) -> None:
        self.rows[self.key(row)] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")


def run_grid(backend: Any, model: Any, arms: dict[str, np.ndarray], bits_list: list[int], eval_x: np.ndarray,
             eval_y: np.ndarray, tpc: Any, context: dict[str, Any], checkpoint: Checkpoint) -> list[dict[str, Any]]:
    """One PTQ per (arm, bits, bias correction); top-1 on the eval images (rows already checkpointed are reused)."""
    from repcurate.repset import mct_data_gen

    rows = []
    for name, tensors in arms.items():
        gen = mct_data_gen(tensors, min(32, len(tensors)))
        for bits in bits_list:
            for bc in (True, False):
                done = checkpoint.get(context, name, bits, bc)
                if done is not None:
                    rows.append(done)
                    continue
                q_model, seconds = backend.quantize(model, gen, bias_correction=bc, weights_bits=bits, tpc=tpc)
                top1 = float(np.mean(backend.outputs(q_model, eval_x).argmax(1) == eval_y))
                row = {**context, "arm": name, "bits": bits, "bias_correction": bc, "top1": round(top1, 6),
                       "ptq_seconds": round(seconds, 2)}
                checkpoint.add(row)
                rows.append(row)
                log.info("%s N=%s %-14s %d-bit bc %-3s top1 %.2f %%", context.get("dataset"), context.get("size"),
                         name, bits, "on" if bc else "off", top1 * 100)
    return rows


@dataclass
class Unit:
    """One piece of the grid for a worker: every arm of one (dataset, framework, N) at one weight
    bit-width, both bias-correction settings; or (``kind="mismatch"``) the planted-mismatch rows."""

    kind: str
    context: dict[str, Any]
    bits: list[int]
    root: Path | None = None
    preprocess: str | None = None
    arms: dict[str, list[ImageRecord]] | None = None


class Worker:
    """What one process needs to run units: the models, the eval tensors, the TPC (loaded once)."""

    def __init__(self, work: Path, settings: dict[str, Any], checkpoint: Path) -> None:
        from repcurate.quantize.mct import target_platform

        self.work, self.settings = work, settings
        self.eval_dir = work / "balanced" / "eval"
        self.checkpoint = Checkpoint(checkpoint)
        self.tpc = target_platform("imx500:1.0")
        self._loaded: dict[str, tuple[Any, Any, np.ndarray, np.ndarray, float]] = {}

    def framework(self, name: str) -> tuple[Any, Any, np.ndarray, np.ndarray, float]:
        """(backend, float model, eval x, eval y, float top-1) of ``name`` ("torch" / "keras")."""
        if name not in self._loaded:
            from benchmarks.ptq_backend import backend_for
            from repcurate.frameworks.loading import load_model

            model_spec, preprocess = (TORCH_MODEL, TORCH_PRE) if name == "torch" else (KERAS_MODEL, KERAS_PRE)
            backend = backend_for(name)
            model, _ = backend.prepare(load_model(model_spec).model)
            x, y = eval_data(self.eval_dir, preprocess)
            top1 = float(np.mean(backend.outputs(model, x).argmax(1) == y))
            log.info("%s float top-1 %.2f %% on %d eval images", name, top1 * 100, len(y))
            self._loaded[name] = (backend, model, x, y, top1)
        return self._loaded[name]

    def run(self, unit: Unit) -> dict[str, Any]:
        """Rows of ``unit`` (measured, or taken from the checkpoint) and the float top-1 it used."""
        backend, model, x, y, top1 = self.framework(unit.context["framework"])
        result: dict[str, Any] = {"float": {unit.context["framework"]: round(top1, 6)}, "rows": [], "mismatch": []}
        if unit.kind == "mismatch":
            result["mismatch"] = mismatch_rows(self.work, self.settings, backend, model, self.eval_dir, x, y, self.tpc)
            return result
        assert unit.arms is not None and unit.root is not None and unit.preprocess is not None
        from repcurate.data.preprocess import make_preprocessor

        preprocessor = make_preprocessor(unit.preprocess)
        arms = {name: load_tensors(records, unit.root, preprocessor) for name, records in unit.arms.items()}
        result["rows"] = run_grid(backend, model, arms, unit.bits, x, y, self.tpc, unit.context, self.checkpoint)
        return result


_WORKER: Worker | None = None


def _start_worker(work: Path, settings: dict[str, Any], checkpoint: Path, threads: int) -> None:
    """Pool initializer: this process's thread budget, logging, and its :class:`Worker`."""
    global _WORKER
    import torch

    torch.set_num_threads(threads)
    _configure_logging()
    _WORKER = Worker(work, settings, checkpoint)


def _run_in_worker(unit: Unit) -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER.run(unit)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)


def grid_units(work: Path, settings: dict[str, Any], cache: Path, keras: bool) -> Iterator[Unit]:
    """Every unit of the benchmark, in a fixed order; the arms are selected here (once), so the
    workers only quantize and score."""
    def unit(context: dict[str, Any], pool: Pool, arm_rows: dict[str, list[int]], bits: list[int]) -> Iterator[Unit]:
        records = {name: [pool.records[i] for i in sorted(rows)] for name, rows in arm_rows.items()}
        for b in bits:
            yield Unit("grid", context, [b], pool.root, pool.preprocess, records)

    for dataset in DATASETS:
        pool = embed_pool(work / dataset / "train", TORCH_MODEL, TORCH_PRE, cache)
        rankings = facility_location_rankings(pool, settings["sizes"])
        for size in settings["sizes"]:
            arm_rows = {name: curated_arm(pool, name, size) for name in settings["strategies"]}
            if rankings is not None:
                arm_rows["facility-location"] = facility_location_arm(pool, size, rankings)
            arm_rows.update(baseline_arms(pool, size, settings["random_sets"]))
            yield from unit({"dataset": dataset, "framework": "torch", "size": size}, pool, arm_rows, settings["bits"])
        # Reference, not a competitor: a large uniform random set estimates what the whole training
        # folder would give as calibration data (per-layer means and ranges of the population).
        population = settings["population"]
        reference = np.random.default_rng(4242).choice(len(pool.records), min(population, len(pool.records)), replace=False)
        yield from unit({"dataset": dataset, "framework": "torch", "size": "reference"}, pool,
                        {f"random-{population}": [int(i) for i in reference]}, settings["bits"])
    yield Unit("mismatch", {"framework": "torch"}, [8])
    if keras:
        pool = embed_pool(work / "balanced" / "train", KERAS_MODEL, KERAS_PRE, cache)
        for size in settings["keras_sizes"]:
            arm_rows = {"kmeans": curated_arm(pool, "kmeans", size)}
            arm_rows.update({k: v for k, v in baseline_arms(pool, size, settings["random_sets"]).items()
                             if k.startswith("random-")})
            yield from unit({"dataset": "balanced", "framework": "keras", "size": size}, pool, arm_rows,
                            settings["keras_bits"])


def run_units(units: Iterator[Unit], work: Path, settings: dict[str, Any], checkpoint: Path, jobs: int) -> list[dict[str, Any]]:
    """Results of every unit, in ``units`` order: in this process (``jobs`` 1), or in ``jobs`` worker
    processes with the cores shared out (each gets cores // jobs threads), units handed out as the
    selection produces them."""
    if jobs <= 1:
        worker = Worker(work, settings, checkpoint)
        return [worker.run(u) for u in units]
    threads = max(1, (os.cpu_count() or 1) // jobs)  # read by the workers' OpenMP and TensorFlow
    # this process (selection, embedding) keeps its own defaults
    pool = spawn_pool(jobs, threads, _start_worker, (work, settings, checkpoint, threads))
    with pool:
        pending = [pool.apply_async(_run_in_worker, (u,)) for u in units]
        return [p.get() for p in pending]


def summarise(rows: list[dict[str, Any]], curated_names: list[str]) -> list[dict[str, Any]]:
    """Per (dataset, framework, N, bits, bias correction): every curated arm against the random band."""
    cells: dict[tuple, list[dict[str, Any]]] = {}
    references = {(r["dataset"], r["framework"], r["bits"], r["bias_correction"]): r["top1"]
                  for r in rows if r["size"] == "reference"}
    for row in rows:
        if row["size"] == "reference":
            continue
        cells.setdefault((row["dataset"], row["framework"], row["size"], row["bits"], row["bias_correction"]), []).append(row)
    summary = []
    for key, cell in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], -kv[0][3], not kv[0][4])):
        by_arm = {r["arm"]: r["top1"] for r in cell}
        random = [v for k, v in by_arm.items() if k.startswith("random-")]
        mean, std = float(np.mean(random)), float(np.std(random))
        entry = {"dataset": key[0], "framework": key[1], "size": key[2], "bits": key[3], "bias_correction": key[4],
                 "random_mean": round(mean, 6), "random_std": round(std, 6), "random_worst": min(random),
                 "random_best": max(random), "random_runs": len(random),
                 "large_random_reference": references.get((key[0], key[1], key[3], key[4]))}
        for name in [*curated_names, "facility-location", "first-n", "single-class"]:
            if name in by_arm:
                entry[name] = by_arm[name]
        for name in curated_names:
            if name in by_arm:
                entry[f"{name}_verdict"] = verdict_words(by_arm[name], random, "top1")
                entry[f"{name}_beats_mean"] = by_arm[name] - mean > max(std, 0.001)
                entry[f"{name}_beats_worst"] = by_arm[name] > min(random)
        summary.append(entry)
    return summary


def mismatch_rows(work: Path, settings: dict[str, Any], backend: Any, model: Any, eval_dir: Path, eval_x: np.ndarray,
                  eval_y: np.ndarray, tpc: Any) -> list[dict[str, Any]]:
    """Sets built with a wrong preprocessing: what ``repcurate check`` says, and top-1 after 8-bit PTQ."""
    import repcurate
    from repcurate.repset import mct_data_gen

    small = work / "mismatch-data"
    if not (small / "train").is_dir():
        write_folders(small, train_per_class=settings["mismatch_train_per_class"], eval_count=1000, overwrite=True)
    rows = []
    for variant in ("correct", "unnormalised_0_1", "unnormalised_0_255", "inverted"):
        preprocess = TORCH_PRE if variant == "correct" else f"{MISMATCH_FILE}:{variant}"
        out = work / f"mismatch-set-{variant}"
        repcurate.build(small / "train", out, size=64, model=TORCH_MODEL, preprocess=preprocess, overwrite=True,
                        progress=False, cache_dir=work / "cache")
        report = repcurate.check(out, eval_dir, eval_preprocess=TORCH_PRE, model=TORCH_MODEL,
                                 cache_dir=work / "cache").to_dict()
        flagged = [{"check": c["id"], "status": c["status"], "message": c["message"]}
                   for c in report["checks"] if c["status"] != "pass"]
        tensors = repcurate.load(out).tensors
        q_model, _ = backend.quantize(model, mct_data_gen(tensors, 32), bias_correction=True, weights_bits=8, tpc=tpc)
        top1 = float(np.mean(backend.outputs(q_model, eval_x).argmax(1) == eval_y))
        rows.append({"variant": variant, "check_verdict": report["verdict"], "flagged": flagged,
                     "top1_8bit_bc_on": round(top1, 6)})
        log.info("mismatch %-20s check %s, 8-bit top1 %.2f %%", variant, report["verdict"], top1 * 100)
    return rows


def plot(summary: list[dict[str, Any]], curated_names: list[str], path: Path) -> None:
    """Top-1 vs N per dataset and bit-width (bias correction on): random band, curated, baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [s for s in summary if s["bias_correction"] and s["framework"] == "torch"]
    datasets = sorted({s["dataset"] for s in cells})
    bits = sorted({s["bits"] for s in cells}, reverse=True)
    fig, axes = plt.subplots(len(datasets), len(bits), figsize=(4.2 * len(bits), 3.4 * len(datasets)), squeeze=False)
    for i, dataset in enumerate(datasets):
        for j, b in enumerate(bits):
            ax = axes[i][j]
            rows = sorted((s for s in cells if s["dataset"] == dataset and s["bits"] == b), key=lambda s: s["size"])
            sizes = [s["size"] for s in rows]
            mean = np.array([s["random_mean"] for s in rows]) * 100
            std = np.array([s["random_std"] for s in rows]) * 100
            ax.fill_between(sizes, [s["random_worst"] * 100 for s in rows], [s["random_best"] * 100 for s in rows],
                            color="0.85", label="random min..max")
            ax.fill_between(sizes, mean - std, mean + std, color="0.65", label="random mean ± std")
            for name, style in [*((n, "-o") for n in curated_names), ("facility-location", "--s"), ("first-n", ":x")]:
                values = [s.get(name) for s in rows]
                if all(v is not None for v in values):
                    ax.plot(sizes, np.array(values) * 100, style, label=name, markersize=4)
            if rows and rows[0].get("large_random_reference") is not None:
                ax.axhline(rows[0]["large_random_reference"] * 100, color="k", linestyle="--", linewidth=0.8,
                           label="large random set (reference)")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{dataset}, {b}-bit weights, bias correction on", fontsize=9)
            ax.set_xlabel("calibration images N")
            ax.set_ylabel("top-1 %")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def outcome(entry: dict[str, Any], name: str) -> str:
    """'helped' / 'no difference' / 'hurt': the curated arm against the random mean, beyond one random std."""
    words = entry.get(f"{name}_verdict", "")
    return "helped" if words.startswith("curated better") else "hurt" if words.startswith("curated worse") else "no difference"


def outcome_lines(summary: list[dict[str, Any]], curated_names: list[str]) -> list[str]:
    """Per (data, framework, bits, bias correction): which set sizes each curated arm helped / hurt."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for entry in summary:
        groups.setdefault((entry["dataset"], entry["framework"], entry["bits"], entry["bias_correction"]), []).append(entry)
    lines = ["| data | fw | bits | bc | " + " | ".join(curated_names) + " |", "|" + "---|" * (4 + len(curated_names))]
    for (dataset, framework, bits, bc), entries in groups.items():
        cells = []
        for name in curated_names:
            by_outcome: dict[str, list[str]] = {}
            for entry in entries:
                if f"{name}_verdict" in entry:
                    by_outcome.setdefault(outcome(entry, name), []).append(str(entry["size"]))
            cells.append("; ".join(f"{k} at N={','.join(v)}" for k, v in sorted(by_outcome.items())) or "-")
        lines.append(f"| {dataset} | {framework} | {bits} | {'on' if bc else 'off'} | " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict[str, Any], curated_names: list[str]) -> str:
    """BENCHMARKS.md tables: one row per cell, then the mismatch rows."""
    header = ["data", "fw", "N", "bits", "bc", *curated_names, "facility-loc.", "random mean ± std", "random worst",
              "first-N", "one class", "large random", "curated vs random"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in result["summary"]:
        verdict = "; ".join(f"{n}: {s[f'{n}_verdict'].split(':')[0]}" for n in curated_names if f"{n}_verdict" in s)
        cells = [s["dataset"], s["framework"], str(s["size"]), str(s["bits"]), "on" if s["bias_correction"] else "off",
                 *(_pct(s.get(n)) for n in curated_names), _pct(s.get("facility-location")),
                 f"{_pct(s['random_mean'])} ± {_pct(s['random_std'])}", _pct(s["random_worst"]), _pct(s.get("first-n")),
                 _pct(s.get("single-class")), _pct(s.get("large_random_reference")), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *outcome_lines(result["summary"], curated_names)]
    lines += ["", "| planted preprocessing | repcurate check | flagged checks | top-1 after 8-bit PTQ |", "|---|---|---|---|"]
    for m in result["mismatch"]:
        flagged = ", ".join(f"{f['check']} ({f['status']})" for f in m["flagged"]) or "-"
        lines.append(f"| {m['variant']} | {m['check_verdict']} | {flagged} | {_pct(m['top1_8bit_bc_on'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quality.json"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/repcurate-quality"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes sharing the cores (default: 2 where there are 2 cores)")
    parser.add_argument("--render", action="store_true", help="only re-render --out's .md and .png from its JSON")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.out.read_text())
        names = list(result["settings"]["strategies"])
        plot(result["summary"], names, args.out.with_suffix(".png"))
        args.out.with_suffix(".md").write_text(markdown(result, names))
        return
    _configure_logging()
    settings = QUICK if args.quick else FULL
    work = args.work / ("quick" if args.quick else "full")
    cache = work / "cache"
    started = time.perf_counter()

    for name, rho in DATASETS.items():
        if not (work / name / "train").is_dir():
            write_folders(work / name, train_per_class=settings["train_per_class"], longtail_rho=rho,
                          eval_count=settings["eval_count"], overwrite=True)
    checkpoint = args.out.with_suffix(".rows.jsonl")
    results = run_units(grid_units(work, settings, cache, keras=not args.no_keras), work, settings, checkpoint,
                        args.jobs)
    rows = [row for r in results for row in r["rows"]]
    mismatch = [row for r in results for row in r["mismatch"]]
    float_top1 = {"torch": None, "keras": None}
    for r in results:
        float_top1.update(r["float"])
    curated_names = list(settings["strategies"])
    summary = summarise(rows, curated_names)
    import model_compression_toolkit as mct
    import torch

    result = {
        "command": " ".join(["python", "benchmarks/quality.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "versions": {"mct": mct.__version__, "torch": torch.__version__},
        "settings": settings, "float_top1": float_top1, "jobs": args.jobs,
        "eval_images": sum(1 for _ in (work / "balanced" / "eval").rglob("*.png")),
        "summary": summary, "mismatch": mismatch, "runs": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(summary, curated_names, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(markdown(result, curated_names))
    log.info("wrote %s and %s in %.0f s", args.out, args.out.with_suffix(".png"), result["seconds"])


if __name__ == "__main__":
    main()
