"""What one run of the quality grid costs, and why ``quality.py --jobs 2`` uses two 1-thread processes.

    python benchmarks/ptq_run_cost.py [--work /tmp/repcurate-quality] [--runs 12]

Needs the quality benchmark's folders (``quality.py`` writes them under ``--work``/full). Prints JSON:
- ``scoring``: seconds to score the float and the 2-bit fake-quantized CNN on the 10,000 test images at
  batch 32 / 64 / 256 / 1,000, with 2 threads and with 1;
- ``ptq_seconds``: one MCT PTQ run (64 calibration images, bias correction on);
- ``processes``: ``--runs`` PTQ + scoring runs (8/4/2-bit in turn) in one 2-thread process, then split over
  two 1-thread processes started together (the slower one's time for its runs; set-up not counted).
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _setup(work: Path, threads: int):
    import torch

    torch.set_num_threads(threads)
    from benchmarks import quality
    from benchmarks.ptq_backend import backend_for
    from repcurate.frameworks.loading import load_model
    from repcurate.quantize.mct import target_platform
    from repcurate.repset import mct_data_gen

    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
    backend = backend_for("torch")
    model, _ = backend.prepare(load_model(quality.TORCH_MODEL).model)
    x, y = quality.eval_data(work / "full" / "balanced" / "eval", quality.TORCH_PRE)
    return backend, model, x, y, mct_data_gen(x[:64].copy(), 32), target_platform("imx500:1.0")


def child_runs(work: Path, threads: int, runs: int) -> dict[str, float]:
    """``runs`` PTQ + scoring runs in this process with ``threads`` torch threads."""
    backend, model, x, _, gen, tpc = _setup(work, threads)
    started = time.perf_counter()
    for i in range(runs):
        q_model, _ = backend.quantize(model, gen, bias_correction=True, weights_bits=[8, 4, 2][i % 3], tpc=tpc)
        backend.outputs(q_model, x)
    return {"threads": threads, "runs": runs, "seconds": round(time.perf_counter() - started, 2)}


def scoring(work: Path) -> dict[str, object]:
    import torch

    backend, model, x, _, gen, tpc = _setup(work, 2)
    started = time.perf_counter()
    q_model, ptq_seconds = backend.quantize(model, gen, bias_correction=True, weights_bits=2, tpc=tpc)
    result: dict[str, object] = {"ptq_seconds": round(ptq_seconds, 2), "ptq_wall": round(time.perf_counter() - started, 2)}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        for name, m in (("float", model), ("quantized_2bit", q_model)):
            for batch in (32, 64, 256, 1000):
                started = time.perf_counter()
                backend.outputs(m, x, batch_size=batch)
                result[f"{name}_threads{threads}_batch{batch}"] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/repcurate-quality"))
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--child", nargs=2, type=int, metavar=("THREADS", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_runs(args.work, *args.child)))
        return
    command = [sys.executable, __file__, "--work", str(args.work), "--child"]

    def loop_seconds(*children: list[str]) -> float:
        """Children started together; the slowest one's own time for its runs (set-up not counted)."""
        processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for c in children]
        outputs = [p.communicate()[0] for p in processes]
        if any(p.returncode for p in processes):
            raise SystemExit(f"a child failed: {[p.args for p in processes if p.returncode]}")
        return max(json.loads(out.strip().splitlines()[-1])["seconds"] for out in outputs)

    one = loop_seconds([*command, "2", str(args.runs)])
    half = str(args.runs // 2)
    two = loop_seconds([*command, "1", half], [*command, "1", half])
    print(json.dumps({"scoring": scoring(args.work),
                      "processes": {"one_process_2_threads_seconds": one, "two_processes_1_thread_seconds": two,
                                    "runs": args.runs}}, indent=2))


if __name__ == "__main__":
    main()
