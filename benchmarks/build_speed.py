"""Build time and peak memory of `repcurate build` on the bundled digits example and on Fashion-MNIST.

    python benchmarks/build_speed.py --out benchmarks/results/build_speed.json [--fashion-count 10000]

Each build runs as a child process (cold cache, then warm cache); wall time and the child's peak
RSS (``os.wait4``) are recorded. Fashion-MNIST comes from Debian's ``dataset-fashion-mnist``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def write_fashion_folder(directory: Path, count: int) -> int:
    """The first ``count`` Fashion-MNIST training images as ``directory/<class>/<index>.png``."""
    with gzip.open(FASHION_DIR / "train-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / "train-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    for index in range(count):
        folder = directory / FASHION_CLASSES[labels[index]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")
    return count


def repcurate_exe() -> str:
    """The ``repcurate`` console command of this environment."""
    return shutil.which("repcurate") or str(Path(sys.executable).parent / "repcurate")


@dataclass
class ChildRun:
    """One child process: wall seconds, peak RSS (``ru_maxrss`` from ``os.wait4``), CPU seconds
    (user + system), exit code, stdout."""

    seconds: float
    peak_rss_mib: float
    cpu_seconds: float
    exit_code: int
    stdout: str
    timed_out: bool = False


def run_child(command: list[str], *, timeout: float | None = None, ok_codes: tuple[int, ...] = (0,)) -> ChildRun:
    """Run ``command`` (stdout captured, stderr dropped); killed after ``timeout`` seconds.

    Raises ``SystemExit`` when it exits with a code outside ``ok_codes`` (a killed child is
    returned with ``timed_out`` set instead).
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                process.kill()
                timed_out = True
                _pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        out.seek(0)
        stdout = out.read().decode()
    if not timed_out and process.returncode not in ok_codes:
        raise SystemExit(f"failed (exit {process.returncode}): {' '.join(command)}")
    return ChildRun(seconds, round(usage.ru_maxrss / 1024, 0), round(usage.ru_utime + usage.ru_stime, 1),
                    process.returncode, stdout, timed_out)


def timed_child(command: list[str]) -> dict[str, float]:
    """Run a ``repcurate build --format json`` command; wall seconds, the child's peak RSS in MiB
    and the build's own statistics."""
    run = run_child(command)
    summary = json.loads(run.stdout)
    return {"seconds": round(run.seconds, 1), "peak_rss_mib": run.peak_rss_mib, "cpu_seconds": run.cpu_seconds,
            "embedded": summary["embedded"], "cache_hits": summary["cache_hits"],
            "stage_seconds": summary["seconds"]}


def bench(name: str, train: Path, work: Path, images: int) -> dict[str, object]:
    cache = work / f"cache-{name}"
    exe = repcurate_exe()
    base = [exe, "build", "--train-dir", str(train), "--cache-dir", str(cache), "--format", "json", "-q"]
    cold = timed_child(base + ["--out", str(work / f"{name}-cold")])
    warm = timed_child(base + ["--out", str(work / f"{name}-warm")])
    return {"dataset": name, "images": images, "cold": cold, "warm": warm,
            "images_per_second_cold": round(images / cold["seconds"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fashion-count", type=int, default=10_000)
    args = parser.parse_args()
    from repcurate.example_data import write_digits_folder

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        digits = write_digits_folder(work / "digits")
        results.append(bench("digits (bundled example)", work / "digits", work, sum(digits.values())))
        if args.fashion_count and FASHION_DIR.is_dir():
            count = write_fashion_folder(work / "fashion", args.fashion_count)
            results.append(bench("fashion-mnist", work / "fashion", work, count))
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "command": " ".join(sys.argv), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
