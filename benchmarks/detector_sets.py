"""Detector (and segmenter) benchmark: does a curated, object-balanced calibration set give a better
MCT-quantized detector than random sets, the first N files, or one class?

    nice -n 10 python benchmarks/detector_sets.py [--data DIR] [--work DIR] [--out benchmarks/results/detector_sets.json]
        [--sizes 32,128,300] [--random-sets 10] [--bits 8,4] [--bias-correction both|on] [--skip N:BITS:on|off,...] [--jobs 2]
        [--segmenter-bits 8,4] [--no-segmenter] [--with-checkpointed] [--quick]

Data: ``examples/make_detection_dataset.py``'s composites (Fashion-MNIST objects on real photo crops; 1,200
long-tailed train images, 300 balanced val images), written to ``<work>/data`` unless ``--data`` names such a
folder (with its ``data.yaml``).

Models: the bundled detector ``repcurate.models.tiny_yolo`` (scored with its ``postprocess``: COCO mAP@0.5:0.95
and mAP@0.5 by pycocotools, :mod:`repcurate.tasks.detection`) and, for the headline row, the bundled segmenter
``repcurate.models.unet_lite`` (mIoU against the val masks, :mod:`repcurate.tasks.segmentation`).

Arms per set size N, all drawn from the train split:

- ``curated``: ``repcurate.build(<train>, size=N, model=<the model>)`` (what ``repcurate build --train-dir
  DIR/data.yaml --size N --model ...`` runs; object-balanced quotas, k-means coverage, seed 0). The detector
  reads the YOLO ``data.yaml``, the segmenter the image + mask folders of the same images;
- ``random-0`` … ``random-9``: N train images drawn uniformly without replacement (seed ``[N, k]``);
- ``first-n``: the first N train images in sorted file order (what most export scripts feed);
- ``one-class``: N images whose objects all belong to the head class (the class with the most instances in
  train), drawn at random (seed ``[N, 1]``) among the images with at least one object and no object of
  another class; fewer than N when there are not that many (the JSON and table give the count).

Every arm calibrates MCT PTQ through repcurate's own quantizer (``repcurate.quantize.registry.get("mct")
.quantize``, the call ``confirm`` makes; IMX500 TPC v1.0, batches of 32) at 8- and 4-bit weights, bias
correction on and off (the segmenter: bias correction on), and the quantized model is scored on all val
images with repcurate's evaluation (:func:`repcurate.evaluate.load_eval`, as ``confirm --eval-dir
DIR/data.yaml --postprocess repcurate.models.tiny_yolo:postprocess`` scores it).

Verdict per cell (N, bits, bias correction): ``confirm``'s rule (:func:`repcurate.commands.confirm.verdict_words`):
curated **helped** / **hurt** when it is above / below the random sets' mean by more than their standard
deviation and by at least 0.1 points, else **no difference**.

``--skip 300:4:off,...`` leaves detector cells out of the grid (to fit a time budget; the JSON's
``settings.skip`` records them); ``--with-checkpointed`` also tabulates rows of the same weights measured
by an earlier, larger grid into the same checkpoint. Units run in this order: the first ``--sizes`` entry, the
segmenter, the other sizes. ``--jobs N`` runs the PTQ grid in N single-threaded worker processes. Every measured run is appended to
``<out>.rows.jsonl`` at once (keyed by the model weights' SHA-256, so new weights never reuse old rows); an
interrupted run resumes from it. ``--quick`` (a 120/40-image dataset, N = 8, 2 random sets, 8-bit) is the
smoke test of this script.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.quality import Checkpoint, _configure_logging
from benchmarks.worker_pool import spawn_pool
from repcurate.commands.confirm import verdict_words
from repcurate.data.scan import ImageRecord, ScanResult
from repcurate.data.sources import scan

log = logging.getLogger("detector_sets")

FULL = {"sizes": [32, 128, 300], "random_sets": 10, "detector_bits": [8, 4], "detector_bias_correction": [True, False],
        "segmenter_sizes": [128], "segmenter_bits": [8, 4], "segmenter_bias_correction": [True],
        "train_images": 1200, "val_images": 300}
QUICK = {"sizes": [8], "random_sets": 2, "detector_bits": [8], "detector_bias_correction": [True, False],
         "segmenter_sizes": [8], "segmenter_bits": [8], "segmenter_bias_correction": [True],
         "train_images": 120, "val_images": 40}
TPC = "imx500:1.0"
BATCH_SIZE = 32
CURATED, FIRST_N, ONE_CLASS = "curated", "first-n", "one-class"


@dataclass(frozen=True)
class Subject:
    """A bundled model under test and how its data is read and scored."""

    name: str
    module: str
    task: str
    metrics: tuple[str, ...]      # headline first
    yolo: bool                    # read the data as the YOLO data.yaml (else the image + mask folders)

    @property
    def model(self) -> str:
        return f"{self.module}:make_model"

    @property
    def preprocess(self) -> str:
        return f"{self.module}:preprocess"

    @property
    def postprocess(self) -> str | None:
        return f"{self.module}:postprocess" if self.task == "detection" else None

    def source(self, data: Path) -> Path:
        """What ``--train-dir`` / ``--eval-dir`` name for this model: the data.yaml or the dataset folder."""
        return data / "data.yaml" if self.yolo else data

    def weights_sha256(self) -> str:
        import importlib

        module = importlib.import_module(self.module)
        return hashlib.sha256(Path(module.WEIGHTS).read_bytes()).hexdigest()


DETECTOR = Subject("detector", "repcurate.models.tiny_yolo", "detection", ("map", "map50"), yolo=True)
SEGMENTER = Subject("segmenter", "repcurate.models.unet_lite", "segmentation", ("miou",), yolo=False)
SUBJECTS = {s.name: s for s in (DETECTOR, SEGMENTER)}


def ensure_data(data: Path | None, work: Path, settings: dict[str, Any]) -> Path:
    """``data`` as given, else the composites written once to ``<work>/data`` (seed 0)."""
    if data is not None:
        return data
    from repcurate.example_detection import write_detection_dataset

    out = work / "data"
    if not (out / "data.yaml").is_file():
        write_detection_dataset(out, train_images=settings["train_images"], val_images=settings["val_images"],
                                seed=0, overwrite=True)
    return out


def head_class(records: list[ImageRecord]) -> int:
    """The class with the most object instances (ties: the lowest id)."""
    counts: dict[int, int] = {}
    for record in records:
        for box in getattr(record, "boxes", ()):
            counts[box.cls] = counts.get(box.cls, 0) + 1
    return min(counts, key=lambda c: (-counts[c], c))


def instances(records: list[ImageRecord]) -> dict[str, int]:
    """Object instances per class id of ``records`` (crowd boxes not counted), and the background images."""
    counts: dict[str, int] = {"background_images": 0}
    for record in records:
        boxes = [b for b in getattr(record, "boxes", ()) if not b.crowd]
        if not boxes:
            counts["background_images"] += 1
        for box in boxes:
            counts[str(box.cls)] = counts.get(str(box.cls), 0) + 1
    return dict(sorted(counts.items()))


def baseline_arms(records: list[ImageRecord], size: int, random_sets: int) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Rows of ``records`` (sorted by path) for the random, first-N and one-class arms, and the one-class rule's facts."""
    n = len(records)
    arms = {f"random-{k}": sorted(int(i) for i in np.random.default_rng([size, k]).choice(n, min(size, n), replace=False))
            for k in range(random_sets)}
    arms[FIRST_N] = list(range(min(size, n)))
    head = head_class(records)
    eligible = [i for i, r in enumerate(records) if r.boxes and all(b.cls == head for b in r.boxes)]  # type: ignore[attr-defined]
    count = min(size, len(eligible))
    arms[ONE_CLASS] = sorted(int(i) for i in np.random.default_rng([size, 1]).choice(eligible, count, replace=False))
    return arms, {"head_class": head, "eligible_images": len(eligible), "selected": count, "requested": size}


def curated_rows(subject: Subject, data: Path, records: list[ImageRecord], size: int, work: Path) -> tuple[list[int], dict[str, Any]]:
    """``repcurate.build``'s set of ``size`` for ``subject``, as rows of ``records``, and its build facts."""
    import repcurate

    out = work / "sets" / f"{subject.name}-{size}"
    started = time.perf_counter()
    result = repcurate.build(subject.source(data), out, size=size, model=subject.model, preprocess=subject.preprocess,
                             split="train", overwrite=True, progress=False, cache_dir=work / "cache")
    seconds = round(time.perf_counter() - started, 1)
    manifest = json.loads((out / "manifest.json").read_text())
    row_of = {r.path: i for i, r in enumerate(records)}
    rows = sorted(row_of[s["path"]] for s in manifest["samples"])
    objects = manifest.get("objects") or {}
    del result
    return rows, {"build_seconds": seconds, "selected": len(rows), "unmet_quotas": objects.get("unmet_quotas"),
                  "set": str(out)}


@dataclass
class Unit:
    """One arm of one (model, N) for a worker: its records and the weight bits × bias-correction grid."""

    subject: str
    size: int
    arm: str
    records: list[ImageRecord]
    root: Path
    configs: list[tuple[int, bool]]   # (weight bits, bias correction)


class Worker:
    """What a process needs to quantize and score: per model the float model, the eval data, the quantizer."""

    def __init__(self, data: Path, checkpoint: Path, weights: dict[str, str], calibration: set[str]) -> None:
        self.data, self.weights, self.calibration = data, weights, calibration
        self.checkpoint = RowCheckpoint(checkpoint)
        self._loaded: dict[str, tuple[Any, ...]] = {}

    def subject(self, name: str) -> tuple[Any, ...]:
        """(framework, float model, preprocessor, eval data, quantizer) of model ``name``, loaded once."""
        if name not in self._loaded:
            from repcurate.data.preprocess import make_preprocessor
            from repcurate.evaluate import EvalSource, load_eval
            from repcurate.frameworks.loading import load_model
            from repcurate.quantize.registry import get as quantizer_named

            subject = SUBJECTS[name]
            loaded = load_model(subject.model)
            quantizer = quantizer_named("mct")
            float_model, _ = quantizer.prepare(loaded.framework, loaded.model)
            preprocessor = make_preprocessor(subject.preprocess)
            source = EvalSource(subject.source(self.data), split="val", task=subject.task, postprocess=subject.postprocess)
            evaluation = load_eval(source, framework=loaded.framework, float_model=float_model, preprocessor=preprocessor,
                                   manifest={}, model_spec=subject.model, calibration_files=self.calibration)
            self._loaded[name] = (loaded.framework, float_model, preprocessor, evaluation, quantizer)
        return self._loaded[name]

    def float_metrics(self, name: str) -> dict[str, float]:
        evaluation = self.subject(name)[3]
        return {m: round(evaluation.float_metrics()[m], 6) for m in SUBJECTS[name].metrics}

    def run(self, unit: Unit) -> list[dict[str, Any]]:
        """The rows of ``unit``: one PTQ + score per (bits, bias correction), or the checkpointed row."""
        from repcurate.embed.pipeline import load_tensors
        from repcurate.repset import mct_data_gen

        framework, float_model, preprocessor, evaluation, quantizer = self.subject(unit.subject)
        context = {"subject": unit.subject, "weights_sha256": self.weights[unit.subject], "size": unit.size}
        rows, gen = [], None
        for bits, bc in unit.configs:
            done = self.checkpoint.get(context, unit.arm, bits, bc)
            if done is not None:
                rows.append(done)
                continue
            if gen is None:
                gen = mct_data_gen(load_tensors(unit.records, unit.root, preprocessor), BATCH_SIZE)
            settings = quantizer.settings(weights_bits=bits, bias_correction=bc, tpc=TPC)
            q_model, ptq_seconds = quantizer.quantize(framework, float_model, gen, settings)
            started = time.perf_counter()
            metrics = evaluation.score(framework, q_model)
            row = {**context, "arm": unit.arm, "images": len(unit.records), "bits": bits, "bias_correction": bc,
                   **{m: round(metrics[m], 6) for m in SUBJECTS[unit.subject].metrics},
                   "sqnr_db": round(metrics["sqnr_db"], 3), "ptq_seconds": round(ptq_seconds, 2),
                   "score_seconds": round(time.perf_counter() - started, 2),
                   "load_average": round(os.getloadavg()[0], 2)}
            self.checkpoint.add(row)
            rows.append(row)
            headline = SUBJECTS[unit.subject].metrics[0]
            log.info("%s N=%d %-10s %d-bit bc %-3s %s %.2f (PTQ %.1f s)", unit.subject, unit.size, unit.arm, bits,
                     "on" if bc else "off", headline, row[headline] * 100, ptq_seconds)
        return rows


class RowCheckpoint(Checkpoint):
    """:class:`benchmarks.quality.Checkpoint` keyed by model, weights, N, arm, bits and bias correction."""

    @staticmethod
    def key(row: dict[str, Any]) -> tuple:
        return row["subject"], row["weights_sha256"], row["size"], row["arm"], row["bits"], row["bias_correction"]


_WORKER: Worker | None = None


def _start_worker(args: tuple[Path, Path, dict[str, str], set[str]]) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)
    _configure_logging()
    _WORKER = Worker(*args)


def _run_in_worker(unit: Unit) -> list[dict[str, Any]]:
    assert _WORKER is not None
    return _WORKER.run(unit)


def run_units(units: list[Unit], worker_args: tuple[Path, Path, dict[str, str], set[str]], jobs: int) -> list[dict[str, Any]]:
    """Every unit's rows, in ``units`` order: here (``jobs`` 1) or in ``jobs`` single-threaded spawned workers."""
    if jobs <= 1:
        worker = Worker(*worker_args)
        return [row for unit in units for row in worker.run(unit)]
    pool = spawn_pool(jobs, 1, _start_worker, (worker_args,))
    with pool:
        pending = [pool.apply_async(_run_in_worker, (u,)) for u in units]
        return [row for p in pending for row in p.get()]


def outcome(words: str) -> str:
    """``verdict_words`` → helped / hurt / no difference."""
    return "helped" if words.startswith("curated better") else "hurt" if words.startswith("curated worse") else "no difference"


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, N, bits, bias correction) and metric: every arm, the random band and the verdict."""
    cells: dict[tuple, dict[str, dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["subject"], row["size"], row["bits"], row["bias_correction"]), {})[row["arm"]] = row
    summary = []
    for (name, size, bits, bc), arms in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2], not kv[0][3])):
        entry: dict[str, Any] = {"subject": name, "size": size, "bits": bits, "bias_correction": bc,
                                 "one_class_images": arms[ONE_CLASS]["images"] if ONE_CLASS in arms else None}
        for metric in SUBJECTS[name].metrics:
            random = [r[metric] for a, r in arms.items() if a.startswith("random-")]
            curated = arms[CURATED][metric] if CURATED in arms else None
            words = verdict_words(curated, random, metric)
            entry[metric] = {
                "curated": curated, "random_mean": round(float(np.mean(random)), 6), "random_std": round(float(np.std(random)), 6),
                "random_min": min(random), "random_max": max(random), "random_runs": len(random),
                "first_n": arms[FIRST_N][metric] if FIRST_N in arms else None,
                "one_class": arms[ONE_CLASS][metric] if ONE_CLASS in arms else None,
                "curated_rank": 1 + sum(v > (curated or 0.0) for v in random),
                "verdict": words, "outcome": outcome(words)}
        summary.append(entry)
    return summary


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def markdown(result: dict[str, Any]) -> str:
    """One table per model: a row per (N, bits, bias correction), then the count of outcomes."""
    lines: list[str] = []
    names = {"map": "mAP@0.5:0.95", "map50": "mAP@0.5", "miou": "mIoU"}
    for name in result["subjects"]:
        subject = SUBJECTS[name]
        entries = [e for e in result["summary"] if e["subject"] == name]
        floats = ", ".join(f"{names[m]} {_pts(result['float'][name][m])}" for m in subject.metrics)
        lines += [f"**{name}** (`{subject.module}`; float: {floats}; points = metric × 100; "
                  f"one-class arm: class {result['one_class'][name]['head_class']})", ""]
        header = ["N", "bits", "bc"]
        for m in subject.metrics:
            header += [f"{names[m]} curated", "random mean ± std", "random min..max", "first-N", "one class", "curated vs random"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e in entries:
            cells = [str(e["size"]), str(e["bits"]), "on" if e["bias_correction"] else "off"]
            for m in subject.metrics:
                c = e[m]
                short = e["one_class_images"] is not None and e["one_class_images"] != e["size"]
                one = _pts(c["one_class"]) + (f" ({e['one_class_images']} img)" if short else "")
                cells += [_pts(c["curated"]), f"{_pts(c['random_mean'])} ± {_pts(c['random_std'])}",
                          f"{_pts(c['random_min'])}..{_pts(c['random_max'])}", _pts(c["first_n"]), one,
                          f"{c['outcome']} (rank {c['curated_rank']}/{c['random_runs'] + 1})"]
            lines.append("| " + " | ".join(cells) + " |")
        for m in subject.metrics:
            tally: dict[str, int] = {}
            for e in entries:
                tally[e[m]["outcome"]] = tally.get(e[m]["outcome"], 0) + 1
            lines.append("")
            lines.append(f"{name}, {names[m]}: curated " + ", ".join(f"{k} in {v}" for k, v in sorted(tally.items()))
                         + f" of {len(entries)} cells.")
        lines.append("")
    return "\n".join(lines)


def plan(data: Path, work: Path, settings: dict[str, Any], subjects: list[str]) -> tuple[list[Unit], dict[str, Any]]:
    """The units of the grid (arms selected here, once) and what each arm is (sizes, one-class facts, instances)."""
    units: list[Unit] = []
    facts: dict[str, Any] = {"arms": {}, "one_class": {}, "curated": {}}
    for name in subjects:
        subject = SUBJECTS[name]
        source: ScanResult = scan(subject.source(data), split="train")
        records = sorted(source.records, key=lambda r: r.path)
        sizes = settings["sizes"] if name == "detector" else settings["segmenter_sizes"]
        for size in sizes:
            arms, one_class = baseline_arms(records, size, settings["random_sets"])
            arms[CURATED], facts["curated"][f"{name}-{size}"] = curated_rows(subject, data, records, size, work)
            facts["one_class"][name] = {k: v for k, v in one_class.items() if k in ("head_class", "eligible_images")}
            facts["one_class"][f"{name}-{size}"] = one_class
            for arm in [CURATED, *sorted(a for a in arms if a.startswith("random-")), FIRST_N, ONE_CLASS]:
                chosen = [records[i] for i in arms[arm]]
                facts["arms"][f"{name}-{size}-{arm}"] = {"images": len(chosen), "instances": instances(chosen)}
                configs = [(b, bc) for b in settings[f"{name}_bits"] for bc in settings[f"{name}_bias_correction"]
                           if name != "detector" or [size, b, bc] not in settings["skip"]]
                units.append(Unit(name, size, arm, chosen, source.root, configs))
    return units, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="a composites folder with data.yaml (default: write one)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/repcurate-detector-sets"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/detector_sets.json"))
    parser.add_argument("--sizes", default=None, help="detector set sizes, comma-separated (default 32,128,300)")
    parser.add_argument("--random-sets", type=int, default=None)
    parser.add_argument("--bits", default=None, help="detector weight bits, comma-separated (default 8,4)")
    parser.add_argument("--bias-correction", choices=("both", "on"), default="both",
                        help="detector: bias correction on and off (default), or on only")
    parser.add_argument("--skip", default="", metavar="N:BITS:on|off,...",
                        help="detector cells left out of the grid (e.g. 300:4:off), recorded in the JSON")
    parser.add_argument("--segmenter-bits", default=None, help="segmenter weight bits, comma-separated (default 8,4)")
    parser.add_argument("--no-segmenter", action="store_true")
    parser.add_argument("--with-checkpointed", action="store_true",
                        help="also tabulate rows of these weights already in <out>.rows.jsonl outside this grid")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render", action="store_true", help="only re-render --out's .md from its JSON")
    args = parser.parse_args()
    if args.render:
        args.out.with_suffix(".md").write_text(markdown(json.loads(args.out.read_text())))
        return
    _configure_logging()
    settings: dict[str, Any] = dict(QUICK if args.quick else FULL)
    if args.sizes:
        settings["sizes"] = [int(s) for s in args.sizes.split(",")]
    if args.random_sets is not None:
        settings["random_sets"] = args.random_sets
    if args.bits:
        settings["detector_bits"] = [int(b) for b in args.bits.split(",")]
    if args.segmenter_bits:
        settings["segmenter_bits"] = [int(b) for b in args.segmenter_bits.split(",")]
    if args.bias_correction == "on":
        settings["detector_bias_correction"] = [True]
    settings["skip"] = [[int(n), int(b), bc == "on"] for n, b, bc in (c.split(":") for c in args.skip.split(",") if c)]
    work = args.work / ("quick" if args.quick else "full")
    started, load_start = time.perf_counter(), [round(v, 2) for v in os.getloadavg()]
    data = ensure_data(args.data, work, settings)
    subjects = ["detector"] if args.no_segmenter else ["detector", "segmenter"]
    weights = {name: SUBJECTS[name].weights_sha256() for name in subjects}
    units, facts = plan(data, work, settings, subjects)
    calibration = {r.fingerprint for s in subjects for r in scan(SUBJECTS[s].source(data), split="train").records}
    worker_args = (data, args.out.with_suffix(".rows.jsonl"), weights, calibration)
    # the first detector size, then the segmenter, then the other sizes: a cut-short run has the headline cells
    first = [u for u in units if u.subject == "detector" and u.size == settings["sizes"][0]]
    units = first + [u for u in units if u.subject == "segmenter"] + [u for u in units if u.subject == "detector" and u.size != settings["sizes"][0]]
    rows = run_units(units, worker_args, args.jobs)
    if args.with_checkpointed:
        measured = {RowCheckpoint.key(r) for r in rows}
        extra = [r for r in RowCheckpoint(worker_args[1]).rows.values()
                 if r["subject"] in weights and r["weights_sha256"] == weights[r["subject"]] and RowCheckpoint.key(r) not in measured]
        settings["checkpointed_rows_added"] = len(extra)
        rows += extra
    reference = Worker(*worker_args)
    import model_compression_toolkit as mct
    import torch

    result = {
        "command": " ".join(["python", "benchmarks/detector_sets.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": load_start, "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "versions": {"mct": mct.__version__, "torch": torch.__version__},
        "data": str(data), "settings": settings, "tpc": TPC, "jobs": args.jobs, "subjects": subjects,
        "weights_sha256": weights, "eval_images": {s: len(reference.subject(s)[3].x) for s in subjects},
        "float": {s: reference.float_metrics(s) for s in subjects},
        "one_class": facts["one_class"], "curated": facts["curated"], "arms": facts["arms"],
        "summary": summarise(rows), "runs": rows, "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    log.info("wrote %s and %s in %.0f s", args.out, args.out.with_suffix(".md"), result["seconds"])


if __name__ == "__main__":
    main()
