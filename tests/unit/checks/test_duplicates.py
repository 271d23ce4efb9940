"""``duplicates`` applies build's near-duplicate rule: the distance cap shrunk in crowded feature
spaces, with the crowding ``build`` measured on the training pool (recorded in the manifest).

A set built with an untrained (seeded, randomly initialised) model used to fail or warn here with
the advice "rebuild with repcurate build", which could change nothing: build had already applied
its own, smaller threshold.
"""
from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image

import repcurate
from repcurate.checks.base import Status
from repcurate.select.selection import DEFAULT_NEAR_DUPLICATE, near_duplicate_threshold
from tests.unit.checks.checks_testdata import plant_samples, write_untrained_digits_model

ONLY_DUPLICATES = {"skip": ["set_size", "class_coverage", "preprocessing_parity", "distribution_shift", "activation_ranges"]}


@pytest.fixture(scope="module")
def untrained(digits):
    """``(model spec, preprocess spec, built set dir)`` for the untrained digits CNN."""
    model_file = write_untrained_digits_model(digits.work)
    model, preprocess = f"{model_file}:make_model", f"{model_file}:preprocess"
    return model, preprocess, digits.build("untrained", size=300, model=model, preprocess=preprocess)


def test_build_records_the_near_duplicate_distance_it_used(untrained):
    parameters = repcurate.load(untrained[2]).manifest["parameters"]
    typical = parameters["typical_neighbour_distance"]
    assert typical > 0
    assert parameters["effective_near_duplicate_distance"] == near_duplicate_threshold(DEFAULT_NEAR_DUPLICATE, typical)
    assert parameters["effective_near_duplicate_distance"] < DEFAULT_NEAR_DUPLICATE  # crowded: the cap shrank
    assert parameters["near_duplicate_distance"] == DEFAULT_NEAR_DUPLICATE  # the requested cap, as before


def test_set_built_with_an_untrained_model_passes_duplicates(digits, untrained, by_id):
    _model, preprocess, set_dir = untrained
    result = by_id(digits.check(set_dir, eval_preprocess=preprocess, config=ONLY_DUPLICATES), "duplicates")
    assert result.status is Status.PASS, result.message
    assert result.message == "0 exact duplicate group(s), 0 near-duplicate pair(s)"
    parameters = repcurate.load(set_dir).manifest["parameters"]
    assert result.details["typical_from"] == "manifest"
    assert result.details["near_distance_used"] == parameters["effective_near_duplicate_distance"]


def test_planted_near_duplicate_is_still_caught_with_an_untrained_model(digits, untrained, by_id, tmp_path):
    _model, preprocess, set_dir = untrained
    repset = repcurate.load(set_dir)
    original = repset.manifest["samples"][42]
    buffer = io.BytesIO()
    Image.open(digits.train / original["path"]).convert("RGB").save(buffer, "JPEG", quality=90)
    planted = plant_samples(repset, tmp_path / "set", tmp_path / "root",
                            [(f"{original['label']}/resaved.jpg", buffer.getvalue(), original["label"])])
    result = by_id(digits.check(planted, eval_preprocess=preprocess, config=ONLY_DUPLICATES), "duplicates")
    assert result.status is Status.WARN, result.message
    assert result.message.startswith("0 exact duplicate group(s), 1 near-duplicate pair(s)")
    assert [(p["a"], p["b"]) for p in result.details["near_pairs"]] == [(original["path"], f"{original['label']}/resaved.jpg")]


def test_set_without_the_record_recomputes_the_rule_on_its_own_embeddings(digits, untrained, by_id, tmp_path):
    """Sets built before the record existed: the same rule, with the crowding measured on the set."""
    _model, preprocess, set_dir = untrained
    older = tmp_path / "older"
    shutil.copytree(set_dir, older)
    manifest = json.loads((older / "manifest.json").read_text())
    for key in ("effective_near_duplicate_distance", "typical_neighbour_distance"):
        del manifest["parameters"][key]
    (older / "manifest.json").write_text(json.dumps(manifest))
    result = by_id(digits.check(older, eval_preprocess=preprocess, config=ONLY_DUPLICATES), "duplicates")
    assert result.details["typical_from"] == "the set's embeddings"
    used = result.details["near_distance_used"]
    assert used == near_duplicate_threshold(DEFAULT_NEAR_DUPLICATE, result.details["typical_neighbour_distance"])
    assert used < DEFAULT_NEAR_DUPLICATE
    # a model given on the command line embeds in another space: the recorded crowding does not apply
    other = by_id(digits.check(set_dir, eval_preprocess=preprocess, model=digits.model, config=ONLY_DUPLICATES),
                  "duplicates")
    assert other.details["typical_from"] == "the set's embeddings"
