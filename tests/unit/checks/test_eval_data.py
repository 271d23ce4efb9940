"""``eval_data``: an eval folder with no usable image fails the gate, whatever the config skips."""
from __future__ import annotations

import re

import pytest

from repcurate.checks.base import Status
from repcurate.checks.config import skipped_ids
from repcurate.checks.registry import CHECKS
from repcurate.errors import UsageError

#: Skip everything that may be skipped: only the required check is left to stop the gate.
SKIP_ALL = {"skip": [c.id for c in CHECKS if not c.required]}


def _truncated_png(digits) -> bytes:
    data = next((digits.eval / "3").iterdir()).read_bytes()
    return data[: len(data) // 2]


def _corrupt_folder(digits, path):
    (path / "7").mkdir(parents=True)
    (path / "7" / "a.png").write_bytes(b"not a png at all")
    (path / "7" / "b.png").write_bytes(_truncated_png(digits))
    (path / "7" / "c.jpg").write_bytes(b"")
    (path / "7" / "notes.txt").write_text("eval notes")
    return path


@pytest.mark.parametrize("config", [{"skip": ["duplicates"]}, SKIP_ALL, {}], ids=["skip-duplicates", "skip-all", "defaults"])
def test_empty_eval_folder_fails_the_gate(digits, good_set, by_id, tmp_path, config):
    empty = tmp_path / "eval"
    empty.mkdir()
    result = digits.check(good_set, empty, config=config)
    gate = by_id(result, "eval_data")
    assert gate.status is Status.FAIL
    assert gate.message == (f"no usable eval image in {empty.resolve()} (no files); fix: pass the folder (or CSV/JSONL "
                            "list) of the evaluation images with --eval-dir")
    assert result.verdict == "fail" and not result.passed()


@pytest.mark.parametrize("config", [{"skip": ["duplicates"]}, SKIP_ALL], ids=["skip-duplicates", "skip-all"])
def test_all_corrupt_eval_folder_fails_the_gate_and_counts_why(digits, good_set, by_id, tmp_path, config):
    folder = _corrupt_folder(digits, tmp_path / "eval")
    result = digits.check(good_set, folder, config=config)
    gate = by_id(result, "eval_data")
    assert gate.status is Status.FAIL, gate.message
    assert gate.value == 0
    assert re.fullmatch(rf"no usable eval image in {re.escape(str(folder.resolve()))} \(.+\); fix: .*--eval-dir", gate.message)
    assert sum(gate.details["skipped"].values()) == 4
    assert gate.details["skipped"]["unsupported_extension"] == 1 and gate.details["skipped"]["empty_file"] == 1
    assert result.verdict == "fail"


def test_one_usable_image_among_corrupt_ones_passes_and_reports_the_rest(digits, good_set, by_id, tmp_path):
    folder = _corrupt_folder(digits, tmp_path / "eval")
    good = next((digits.eval / "7").iterdir())
    (folder / "7" / "z.png").write_bytes(good.read_bytes())
    gate = by_id(digits.check(good_set, folder, config=SKIP_ALL), "eval_data")
    assert gate.status is Status.PASS
    assert gate.message.startswith("1 eval image(s) (4 file(s) skipped: ")
    assert gate.details["first_usable"] == "7/z.png"


def test_eval_data_cannot_be_skipped():
    with pytest.raises(UsageError, match=re.escape("eval_data cannot be skipped")):
        skipped_ids({"skip": ["duplicates", "eval_data"]})


def test_good_eval_folder_passes(digits, good_set, by_id):
    gate = by_id(digits.check(good_set, config=SKIP_ALL), "eval_data")
    assert gate.status is Status.PASS and gate.message == "450 eval image(s)" and gate.value == 450
