"""End-to-end doctor example: a digits CNN broken on purpose, diagnosed and fixed by `repcurate doctor`.

    python examples/doctor_digits.py WORKDIR [--variant spikes|culprit|concat|negative|untraceable|healthy]
                                     [--weights-bits 8] [--format text|markdown|json]

Writes scikit-learn's digits as train (100 per class) and held-out eval (70 per class) folders, trains the
CNN of examples/doctor_models.py, plants the chosen defect, builds a 64-image set with the healthy model
and runs `repcurate doctor` on the broken one.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from doctor_models import VARIANTS, write_variant  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--variant", choices=VARIANTS, default="spikes")
    parser.add_argument("--weights-bits", default="8")
    parser.add_argument("--format", default="text", choices=("text", "markdown", "json"))
    args = parser.parse_args()
    import repcurate
    from repcurate.example_data import write_digits_folder

    work = args.work
    if not (work / "train").is_dir():
        write_digits_folder(work / "train", per_class={d: 100 for d in range(10)})
        write_digits_folder(work / "eval", per_class={d: 70 for d in range(10)}, offset=100)
    healthy, preprocess = write_variant(work, "healthy")
    if not (work / "repset").is_dir():
        repcurate.build(work / "train", work / "repset", size=64, model=healthy, preprocess=preprocess,
                        use_cache=False, progress=False)
    model, _ = write_variant(work, args.variant)
    exe = Path(sys.executable).parent / "repcurate"
    result = subprocess.run([str(exe), "doctor", "--model", model, "--repset", str(work / "repset"),
                             "--eval-dir", str(work / "eval"), "--preprocess", preprocess, "--weights-bits", args.weights_bits,
                             "--format", args.format])
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
