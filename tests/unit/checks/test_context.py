"""A set whose manifest lacks a record a check needs fails that check (it used to be skipped, which
turned a failing gate into a passing one); inputs that are optional by design still skip.

The sets are real ``repcurate build`` outputs whose ``manifest.json`` is edited on disk, as a user
(or a tampered CI artifact) would. The evaluation pipeline is named by the caller
(``eval_preprocess=``) where one is needed, never taken from the manifest.
"""
from __future__ import annotations

import json
import shutil

import pytest

from repcurate.checks.base import Status

REBUILD = "fix: rebuild the set with repcurate build"


def without(good_set, tmp_path, *keys: str):
    """A copy of the set with ``keys`` removed from its manifest."""
    copy = tmp_path / ("without_" + "_".join(keys))
    shutil.copytree(good_set, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for key in keys:
        del manifest[key]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_set_without_preprocessing_fails_every_check_that_needs_it(digits, good_set, by_id, tmp_path):
    tampered = without(good_set, tmp_path, "preprocessing")
    result = digits.check(tampered, eval_preprocess=digits.preprocess)
    message = ("the set's manifest records no preprocessing (the pipeline the set's tensors were made with); " + REBUILD)
    for check_id in ("preprocessing_parity", "duplicates", "distribution_shift"):
        failed = by_id(result, check_id)
        assert failed.status is Status.FAIL, (check_id, failed.status, failed.message)
        assert failed.message == message and failed.details == {"missing": "preprocessing"}
    # checks that do not need it still run; activation_ranges without --model is an opt-in and skips
    assert by_id(result, "set_size").status is Status.PASS
    assert by_id(result, "class_coverage").status is Status.PASS
    assert by_id(result, "activation_ranges").status is Status.SKIPPED
    assert not result.passed() and not result.passed(fail_on="warn")


def test_set_without_preprocessing_fails_the_gate_without_eval_preprocess(digits, good_set, by_id, tmp_path):
    """The issue's case: with nothing named on the command line the checks used to skip and the gate passed."""
    result = digits.check(without(good_set, tmp_path, "preprocessing"))
    parity = by_id(result, "preprocessing_parity")
    assert parity.status is Status.FAIL and parity.message.startswith("the set's manifest records no preprocessing")
    assert by_id(result, "distribution_shift").status is Status.FAIL
    assert result.verdict == "fail"


def test_set_without_model_fails_the_embedding_checks_unless_model_is_given(digits, good_set, by_id, tmp_path):
    tampered = without(good_set, tmp_path, "model")
    result = digits.check(tampered, eval_preprocess=digits.preprocess)
    for check_id in ("duplicates", "distribution_shift"):
        failed = by_id(result, check_id)
        assert failed.status is Status.FAIL, (check_id, failed.message)
        assert failed.message == ("the set's manifest records no model (the model the set was selected with); "
                                  f"{REBUILD}, or pass --model")
    assert by_id(result, "preprocessing_parity").status is Status.PASS
    given = digits.check(tampered, eval_preprocess=digits.preprocess, model=digits.model)
    assert by_id(given, "duplicates").status is Status.PASS
    assert by_id(given, "distribution_shift").status is Status.PASS


def test_set_without_classes_fails_class_coverage_on_an_unlabelled_eval_set(digits, good_set, by_id, tmp_path):
    tampered = without(good_set, tmp_path, "classes")
    coverage = by_id(digits.check(tampered, digits.eval_flat, config={"skip": ["duplicates", "distribution_shift"]}),
                     "class_coverage")
    assert coverage.status is Status.FAIL
    assert coverage.message.startswith("the set's manifest records no training classes")
    assert coverage.details == {"missing": "classes"}
    # a labelled eval set is the reference itself: the manifest's classes are not needed
    labelled = by_id(digits.check(tampered, config={"skip": ["duplicates", "distribution_shift"]}), "class_coverage")
    assert labelled.status is Status.PASS


@pytest.mark.parametrize("key", ["preprocessing", "model"])
def test_a_malformed_record_counts_as_missing(digits, good_set, by_id, tmp_path, key):
    copy = tmp_path / "set"
    shutil.copytree(good_set, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest[key] = {"spec": ""}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    shift = by_id(digits.check(copy, eval_preprocess=digits.preprocess), "distribution_shift")
    assert shift.status is Status.FAIL and shift.details == {"missing": key}
