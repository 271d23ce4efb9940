"""``set_size`` and ``class_coverage`` on sets built with ``repcurate.build`` from real digits."""
from __future__ import annotations

import pytest

from repcurate.checks.base import Status
from tests.unit.checks.checks_testdata import drop_label

FAST = {"skip": ["distribution_shift", "duplicates"]}


@pytest.mark.parametrize("size, status, needle", [
    (20, Status.FAIL, "20 images is too few for PTQ statistics (< 32); fix: rebuild with --size 300"),
    (60, Status.WARN, "60 images (< 100 recommended); fix: rebuild with a larger --size"),
    (300, Status.PASS, "300 images in 10 class(es)"),
])
def test_set_size_thresholds(digits, by_id, size, status, needle):
    repset = digits.build("good" if size == 300 else f"size{size}", size=size)
    result = by_id(digits.check(repset, config=FAST), "set_size")
    assert result.status is status
    assert result.value == size
    assert result.message == needle
    assert sum(result.details["per_class"].values()) == size


def test_set_size_thresholds_from_config(digits, by_id):
    repset = digits.build("size60", size=60)
    assert by_id(digits.check(repset, config={**FAST, "set_size": {"warn_below": 50}}), "set_size").status is Status.PASS
    failing = by_id(digits.check(repset, config={**FAST, "set_size": {"fail_below": 61}}), "set_size")
    assert failing.status is Status.FAIL and "(< 61)" in failing.message


def test_small_classes_warn(digits, by_id):
    """120 images in total but one class with only 3: the per-class floor warns and names it."""
    folder = digits.folder("one_rare", part="train", per_class=None, classes=set(range(9)))
    rare = digits.folder("rare9", part="train", classes={9}, per_class=3)
    for path in (rare / "9").iterdir():
        target = folder / "9" / path.name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(path.read_bytes())
    repset = digits.build("rare9", folder, size=120)  # uniform quotas: 9 takes all 3 it has
    result = by_id(digits.check(repset, config=FAST), "set_size")
    assert result.status is Status.WARN, result.message
    assert result.message.startswith("classes with fewer than 5 images: 9 (")
    assert "9" in result.details["small_classes"]


def test_single_class_set_fails(digits, by_id):
    repset = digits.build("only3", digits.folder("only3", part="train", classes={3}), size=40)
    result = by_id(digits.check(repset, config=FAST), "class_coverage")
    assert result.status is Status.FAIL
    assert result.message == "single-class set (only '3'); fix: rebuild with --balance uniform"
    assert result.details["classes_present"] == 1 and result.details["classes_expected"] == 10
    assert result.details["dominant_share"] == 1.0
    assert result.value == 0.1


def test_missing_classes_fail_and_are_listed(digits, by_id):
    repset = digits.build("digits0to6", digits.folder("digits0to6", part="train", classes=set(range(7))), size=140)
    result = by_id(digits.check(repset, config=FAST), "class_coverage")
    assert result.status is Status.FAIL
    assert result.message == "3 eval set classes missing from the set: 7, 8, 9"
    assert result.details["missing"] == ["7", "8", "9"]
    assert result.details["reference"] == "eval set"
    assert result.value == 0.7


def test_balanced_set_passes(digits, good_set, by_id):
    result = by_id(digits.check(good_set, config=FAST), "class_coverage")
    assert result.status is Status.PASS
    assert result.message == "10 of 10 eval set classes present"
    assert result.value == 1.0
    assert result.details["balance_ratio"] == 1.0 and result.details["missing"] == []


def test_unlabelled_eval_falls_back_to_training_classes(digits, good_set, by_id):
    result = by_id(digits.check(good_set, digits.eval_flat, config=FAST), "class_coverage")
    assert result.status is Status.PASS
    assert result.message == "10 of 10 training set classes present"
    assert result.details["reference"] == "training set"


def test_unlabelled_eval_still_catches_a_training_class_missing_from_the_set(digits, good_set, by_id):
    import repcurate

    trimmed = drop_label(repcurate.load(good_set), digits.work / "sets" / "good_without_9", "9")
    result = by_id(digits.check(trimmed, digits.eval_flat, config=FAST), "class_coverage")
    assert result.status is Status.FAIL
    assert result.message == "1 training set class missing from the set: 9"


def test_dominant_class_fails(digits, by_id):
    """Proportional balance over a long-tailed folder: one class is 92 % of the set."""
    folder = digits.folder("tail", part="train", classes={0}, per_class=110)
    extra = digits.folder("tail_rest", part="train", classes={1, 2}, per_class=5)
    for path in extra.rglob("*.png"):
        target = folder / path.parent.name / path.name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(path.read_bytes())
    repset = digits.build("tail", folder, size=120, balance="proportional")
    result = by_id(digits.check(repset, digits.eval_flat, config=FAST), "class_coverage")
    assert result.status is Status.FAIL
    assert "(nearly single-class)" in result.message and result.details["dominant_class"] == "0"


def test_eval_set_with_fewer_classes_than_the_set_counts_the_eval_classes(digits, good_set, by_id):
    """An eval folder of one class: 1 of 1 eval class present (not "10 of 1")."""
    one_class = digits.folder("eval_only3", part="eval", classes={3})
    result = by_id(digits.check(good_set, one_class, config=FAST), "class_coverage")
    assert result.status is Status.PASS
    assert result.message == "1 of 1 eval set classes present (the set also has 9 class(es) the eval set lacks)"
    assert result.details["reference_classes_present"] == 1 and result.details["classes_expected"] == 1
    assert result.details["extra_classes"] == ["0", "1", "2", "4", "5", "6", "7", "8", "9"]
