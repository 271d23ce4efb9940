"""Behaviour-preservation digests: build, check and confirm on two bundled examples, timings stripped.

    python benchmarks/byte_identity.py --work DIR [--out digests.json] [--expect digests.json]

Runs the command line on (1) scikit-learn's digits (30 train / 20 eval images per class, a seeded digits CNN
from ``examples/confirm_digits.py``) and (2) the bundled detector ``repcurate.models.tiny_yolo`` on a small
YOLO example from ``repcurate.example_detection`` (40 train / 20 val images): ``build`` (manifest.json,
calibration.npz, projection.npz), ``check --format json`` and ``confirm --format json --random-sets 1``.
Timing fields and the work folder's own path are removed from the JSON before hashing; the sha256 of each
output is printed (and written to ``--out``). With ``--expect``, exits 1 when any digest differs from the
recorded ones. Used to show that a restructuring changes no output byte.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: keys whose values are wall-clock measurements (or derived from them), dropped before hashing
TIMING_KEYS = ("seconds", "elapsed", "duration", "timing", "timings", "time_s", "wall", "started", "finished",
               "created", "created_at", "timestamp", "images_per_second", "throughput")


def _is_timing(key: str) -> bool:
    lowered = key.lower()
    return any(lowered == name or lowered.endswith("_" + name) or lowered.startswith(name + "_") for name in TIMING_KEYS)


def strip(value: Any, work: str) -> Any:
    """``value`` without timing keys, the work folder's path replaced by ``WORK``."""
    if isinstance(value, dict):
        return {key: strip(item, work) for key, item in value.items() if not _is_timing(str(key))}
    if isinstance(value, list):
        return [strip(item, work) for item in value]
    if isinstance(value, str):
        return value.replace(work, "WORK")
    return value


def json_digest(path: Path, work: Path) -> str:
    data = strip(json.loads(path.read_text()), str(work))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(args: list[str], *, ok: tuple[int, ...] = (0, 1)) -> str:
    exe = Path(sys.executable).parent / "repcurate"
    done = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if done.returncode not in ok:
        raise SystemExit(f"repcurate {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def case(name: str, work: Path, train: str, eval_: str, model: str, preprocess: str, size: int,
         extra_confirm: list[str]) -> dict[str, str]:
    out = work / f"{name}-set"
    run(["build", "--train-dir", train, "--out", str(out), "--size", str(size), "--model", model, "--preprocess", preprocess,
         "--no-cache", "--overwrite", "-q", "--format", "json"], ok=(0,))
    digests = {f"{name}/{file}": (json_digest(out / file, work) if file.endswith(".json") else file_digest(out / file))
               for file in ("manifest.json", "calibration.npz", "projection.npz")}
    (work / f"{name}-check.json").write_text(run(["check", "--repset", str(out), "--eval-dir", eval_, "--model", model,
                                                  "--no-cache", "--format", "json", "-q", "--trust-set"]))
    digests[f"{name}/check.json"] = json_digest(work / f"{name}-check.json", work)
    (work / f"{name}-confirm.json").write_text(run(["confirm", "--repset", str(out), "--model", model, "--preprocess",
                                                    preprocess, "--eval-dir", eval_, "--random-sets", "1", "--no-cache",
                                                    "--format", "json", "-q", *extra_confirm]))
    digests[f"{name}/confirm.json"] = json_digest(work / f"{name}-confirm.json", work)
    return digests


def digits(work: Path) -> dict[str, str]:
    from repcurate.example_data import write_digits_folder
    spec = importlib.util.spec_from_file_location("confirm_digits", ROOT / "examples" / "confirm_digits.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    if not (work / "digits-train").exists():
        write_digits_folder(work / "digits-train", per_class=dict.fromkeys(range(10), 30))
        write_digits_folder(work / "digits-eval", per_class=dict.fromkeys(range(10), 20), offset=100)
    if not (work / "digits.pt").exists():
        example.train_digits_cnn(work / "digits.pt")
    (work / "digits_model.py").write_text(example.MODEL_SOURCE.format(weights=str(work / "digits.pt")))
    model_file = work / "digits_model.py"
    return case("digits", work, str(work / "digits-train"), str(work / "digits-eval"), f"{model_file}:make_model",
                f"{model_file}:preprocess", 20, [])


def detector(work: Path) -> dict[str, str]:
    from repcurate.example_detection import write_detection_dataset
    data = work / "composites"
    if not data.exists():
        write_detection_dataset(data, train_images=40, val_images=20, seed=0)
    spec = "repcurate.models.tiny_yolo"
    return case("detector", work, str(data / "data.yaml"), str(data / "data.yaml"), f"{spec}:make_model",
                f"{spec}:preprocess", 8, ["--postprocess", f"{spec}:postprocess", "--task", "detection"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (reused between runs)")
    parser.add_argument("--out", type=Path, help="write the digests here (JSON)")
    parser.add_argument("--expect", type=Path, help="recorded digests to compare with; exit 1 on any difference")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve()
    digests = {**digits(work), **detector(work)}
    text = json.dumps(digests, indent=2, sort_keys=True) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    if args.expect:
        expected = json.loads(args.expect.read_text())
        differ = sorted(key for key in expected.keys() | digests.keys() if expected.get(key) != digests.get(key))
        sys.stdout.write("byte-identical\n" if not differ else f"DIFFER: {', '.join(differ)}\n")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
