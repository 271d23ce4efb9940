"""Regenerate ``data/confirm_digits.json``: a real ``repcurate confirm`` run on the digits example.

    python -m tests.unit.report.make_confirm_fixture WORKDIR

The same project as ``tests/e2e/test_confirm.py``: scikit-learn digits (60 training and 40 held-out
images per class), the seeded digits CNN, a 32-image set, 2 random sets, 2-bit weights, seed 5.
The report tests render this file instead of spending a minute on MCT each run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import repcurate
from repcurate.example_data import write_digits_folder
from tests.e2e.model_files import write_model

FIXTURE = Path(__file__).with_name("data") / "confirm_digits.json"


def main(work: Path) -> None:
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 60))
    write_digits_folder(work / "eval", per_class=dict.fromkeys(range(10), 40), offset=60)
    model, preprocess = write_model(work, "torch")
    repcurate.build(work / "train", work / "repset", size=32, model=model, preprocess=preprocess,
                    use_cache=False, progress=False, overwrite=True)
    result = repcurate.confirm(work / "repset", model, work / "eval",
                               random_sets=2, weights_bits=2, seed=5, trust_set=True)
    FIXTURE.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
