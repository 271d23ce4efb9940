"""A/B of ``repcurate build`` between this tree and another checkout of repcurate, alternated in one run, beside the
pure batched forward pass of the bundled embedder (``speed.py``'s ``embed`` / ``cache`` measurements, both sides).

    git archive <commit> | tar -x -C /tmp/base        # the other side
    nice -n 10 python benchmarks/build_ab.py --train /tmp/rc-speed/train --base /tmp/base --work /tmp/ab \\
        --reps 2 --out /tmp/ab.jsonl

Per repetition: the forward child of ``speed.py``, then a cold build (empty cache) and a warm rebuild of each side,
the side that goes first alternating between repetitions. The other side runs with ``PYTHONPATH=<base>``, so its
``repcurate`` package is imported from there (the CLI package comes from this environment). One JSON line per
measurement (1-minute load average at its start), and per repetition whether both sides wrote byte-identical
``calibration.npz`` and ``manifest.json``. ``--train``: a folder ``speed.py --work`` made (``<work>/train``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from build_speed import repcurate_exe, run_child, timed_child


def _build(side: str, tag: str, train: Path, work: Path, base: Path) -> dict[str, object]:
    cache = work / f"cache-{side}"
    if tag == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    command = [repcurate_exe(), "build", "--train-dir", str(train), "--out", str(work / f"set-{side}-{tag}"),
               "--cache-dir", str(cache), "--format", "json", "-q", "--overwrite"]
    if side == "base":
        os.environ["PYTHONPATH"] = str(base)
    try:
        return timed_child(command)
    finally:
        os.environ.pop("PYTHONPATH", None)


def _same(work: Path, name: str) -> bool:
    return all((work / f"set-this-{tag}" / name).read_bytes() == (work / f"set-base-{tag}" / name).read_bytes()
               for tag in ("cold", "warm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (its repcurate/ package)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    speed = str(Path(__file__).with_name("speed.py"))
    with args.out.open("a", encoding="utf-8") as out:
        def emit(row: dict[str, object]) -> None:
            out.write(json.dumps(row) + "\n")
            out.flush()

        for rep in range(args.reps):
            forward = run_child([sys.executable, speed, "--child", "forward", str(args.train), "32"])
            emit({"rep": rep, "what": "forward", "load1": os.getloadavg()[0], **json.loads(forward.stdout),
                  "cpu_seconds": forward.cpu_seconds, "seconds": forward.seconds})
            for side in (("this", "base") if rep % 2 == 0 else ("base", "this")):
                for tag in ("cold", "warm"):
                    load = os.getloadavg()[0]
                    emit({"rep": rep, "what": f"{side}-{tag}", "load1": load,
                          **_build(side, tag, args.train, args.work, args.base)})
            emit({"rep": rep, "identical": {name: _same(args.work, name) for name in ("calibration.npz", "manifest.json")}})


if __name__ == "__main__":
    main()
