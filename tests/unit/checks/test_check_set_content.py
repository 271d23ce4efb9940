"""``duplicates``, ``distribution_shift`` and ``activation_ranges`` on real data.

Duplicates are planted by editing a built set (``repcurate build`` itself never selects them):
the set's files are copied under a new root and extra samples are appended with their tensors
from the set's own pipeline.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from repcurate.checks.base import Status
from repcurate.example_data import write_digits_folder
from tests.unit.checks.checks_testdata import plant_samples, write_fashion

ONLY = {check: {"skip": [c for c in ("set_size", "class_coverage", "preprocessing_parity", "duplicates",
                                     "distribution_shift", "activation_ranges") if c != check]}
        for check in ("duplicates", "distribution_shift", "activation_ranges")}


@pytest.fixture(scope="module")
def good(good_set):
    import repcurate

    return repcurate.load(good_set)


def _jpeg_bytes(path, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


# ------------------------------------------------------------------ duplicates
def test_good_set_has_no_duplicates(digits, good_set, by_id):
    result = by_id(digits.check(good_set, config=ONLY["duplicates"]), "duplicates")
    assert result.status is Status.PASS
    assert result.message == "0 exact duplicate group(s), 0 near-duplicate pair(s)"
    assert result.value == 0.0


def test_exact_duplicate_file_warns_and_names_the_group(digits, good, by_id, tmp_path):
    root = tmp_path / "root"
    original = good.manifest["samples"][17]
    source = digits.train / original["path"]
    planted = plant_samples(good, tmp_path / "set", root,
                            [(f"{original['label']}/copy_of_{source.name}", source.read_bytes(), original["label"])])
    result = by_id(digits.check(planted, config=ONLY["duplicates"]), "duplicates")
    assert result.status is Status.WARN
    assert result.message == ("1 exact duplicate group(s), 0 near-duplicate pair(s); "
                              "duplicates over-weight their content in PTQ statistics")
    assert result.details["exact_groups"] == [[original["path"], f"{original['label']}/copy_of_{source.name}"]]
    assert result.details["redundant_images"] == 1
    assert result.value == round(1 / 301, 4)


def test_many_exact_duplicates_fail(digits, good, by_id, tmp_path):
    extra = []
    for sample in good.manifest["samples"][::8]:  # 38 copies: 38 / 338 = 11 % redundant
        source = digits.train / sample["path"]
        extra.append((f"{sample['label']}/dup_{source.name}", source.read_bytes(), sample["label"]))
    planted = plant_samples(good, tmp_path / "set", tmp_path / "root", extra)
    result = by_id(digits.check(planted, config=ONLY["duplicates"]), "duplicates")
    assert result.status is Status.FAIL
    assert result.message.startswith("11% of the set is redundant: 38 exact duplicate group(s)")
    assert "fix: rebuild with repcurate build (deduplicates)" in result.message
    assert len(result.details["exact_groups"]) == 38


def test_near_duplicates_re_encoded_copies_are_found(digits, good, by_id, tmp_path):
    """The same digits re-saved as JPEG and as an upscaled PNG: different bytes and tensors, same content."""
    jpeg_of, upscaled_of = good.manifest["samples"][3], good.manifest["samples"][250]
    upscaled = io.BytesIO()
    Image.open(digits.train / upscaled_of["path"]).resize((48, 48), Image.BICUBIC).save(upscaled, "PNG")
    planted = plant_samples(good, tmp_path / "set", tmp_path / "root", [
        (f"{jpeg_of['label']}/resaved.jpg", _jpeg_bytes(digits.train / jpeg_of["path"]), jpeg_of["label"]),
        (f"{upscaled_of['label']}/upscaled.png", upscaled.getvalue(), upscaled_of["label"]),
    ])
    result = by_id(digits.check(planted, config=ONLY["duplicates"]), "duplicates")
    assert result.status is Status.WARN
    assert result.message.startswith("0 exact duplicate group(s), 2 near-duplicate pair(s)")
    pairs = {(p["a"], p["b"]) for p in result.details["near_pairs"]}
    assert pairs == {(jpeg_of["path"], f"{jpeg_of['label']}/resaved.jpg"),
                     (upscaled_of["path"], f"{upscaled_of['label']}/upscaled.png")}
    assert all(p["distance"] < 0.1 for p in result.details["near_pairs"])
    # a tighter threshold from the config no longer counts them
    strict = by_id(digits.check(planted, config={**ONLY["duplicates"], "duplicates": {"near_distance": 0.0001}}),
                   "duplicates")
    assert strict.status is Status.PASS


# ------------------------------------------------------------------ distribution_shift
@pytest.fixture(scope="module")
def fashion_eval(digits):
    path = digits.work / "fashion_eval"
    if not path.exists():
        write_fashion(path, 200)
    return path


def test_digits_set_against_fashion_eval_fails(digits, good_set, fashion_eval, by_id):
    result = by_id(digits.check(good_set, fashion_eval, config=ONLY["distribution_shift"]), "distribution_shift")
    assert result.status is Status.FAIL
    assert result.value < 0.5
    assert result.message.startswith(f"the set covers only {result.value:.0%} of the eval distribution")
    assert "the domain differs" in result.message and "--match-dir" in result.message
    assert result.details["p_value"] < 0.01
    assert result.details["coverage"] < result.details["expected_coverage_same_distribution"] / 2


def test_the_p_value_is_judged_unrounded(digits, good_set, fashion_eval, by_id):
    """Fashion vs digits: no permutation beats the observed MMD², so p = 1/201 = 0.004975…; at alpha 0.005 the
    test must warn (rounded to 4 places p was 0.005 and passed). Coverage gates are opened so p decides."""
    config = {**ONLY["distribution_shift"],
              "distribution_shift": {"alpha": 0.005, "fail_coverage": 0, "warn_coverage": 0, "warn_channel_shift": 1e9}}
    result = by_id(digits.check(good_set, fashion_eval, config=config), "distribution_shift")
    assert result.details["p_value"] == 1 / 201
    assert result.status is Status.WARN and "two-sample test detects a difference (p < 0.005)" in result.message


def test_digits_set_against_disjoint_digits_eval_does_not_fail(digits, good_set, by_id):
    """Interleaved split (same writers, no shared file): no shift to report."""
    result = by_id(digits.check(good_set, config=ONLY["distribution_shift"]), "distribution_shift")
    assert result.status is not Status.FAIL
    assert result.value > 0.8
    assert result.details["coverage"] == result.value
    assert result.details["repset_images"] == 300 and result.details["eval_images"] == 450


def test_other_writers_are_a_mild_shift_not_a_failure(digits, by_id):
    """load_digits is ordered by writer, so ``offset=`` folders come from other writers: the check
    sees a mild shift (coverage below the ≈ 97 % of no shift) but nothing like another domain."""
    train, evals = digits.work / "writers_train", digits.work / "writers_eval"
    if not train.exists():
        write_digits_folder(train, per_class=dict.fromkeys(range(10), 100))
        write_digits_folder(evals, per_class=dict.fromkeys(range(10), 30), offset=100)
    repset = digits.build("writers", train, size=200)
    result = by_id(digits.check(repset, evals, config=ONLY["distribution_shift"]), "distribution_shift")
    assert result.status is not Status.FAIL, result.message
    assert result.value > 0.5


# ------------------------------------------------------------------ activation_ranges
@pytest.fixture(scope="module")
def biased_set(digits):
    """Only digits 0 and 1, as when calibration images come from the first batches of a sorted dataset."""
    return digits.build("zeros_and_ones", digits.folder("zeros_and_ones", part="train", classes={0, 1}), size=120)


def test_biased_set_clips_eval_activations_and_names_the_worst_layers(digits, biased_set, by_id):
    result = by_id(digits.check(biased_set, model=digits.model, config=ONLY["activation_ranges"]), "activation_ranges")
    assert result.status in {Status.WARN, Status.FAIL}
    assert result.value > 0
    worst = result.details["worst"]
    assert len(worst) == 5 and worst[0]["outside_fraction"] == result.value
    assert [w["outside_fraction"] for w in worst] == sorted((w["outside_fraction"] for w in worst), reverse=True)
    layer_names = {r["layer"] for r in result.details["layers"]}
    assert {"features.0", "features.3", "head"} <= layer_names
    assert worst[0]["layer"] in result.message
    assert f"{worst[0]['layer']} ({worst[0]['outside_fraction']:.2%})" in result.message
    assert any(w["eval_max"] > w["set_max"] or w["eval_min"] < w["set_min"] for w in worst)


def test_balanced_set_clips_less_than_biased_set(digits, good_set, biased_set, by_id):
    good = by_id(digits.check(good_set, model=digits.model, config=ONLY["activation_ranges"]), "activation_ranges")
    biased = by_id(digits.check(biased_set, model=digits.model, config=ONLY["activation_ranges"]), "activation_ranges")
    assert good.status is not Status.ERROR and biased.status is not Status.ERROR
    assert good.value < biased.value
    good_total = np.mean([r["outside_fraction"] for r in good.details["layers"]])
    biased_total = np.mean([r["outside_fraction"] for r in biased.details["layers"]])
    assert good_total < biased_total


def test_activation_ranges_skipped_without_model(digits, good_set, by_id):
    result = by_id(digits.check(good_set, config=ONLY["activation_ranges"]), "activation_ranges")
    assert result.status is Status.SKIPPED and result.message == "no --model given"


def test_tiny_sets_skip_distribution_shift_instead_of_crashing(digits, by_id):
    """k-NN coverage needs more than k points per side; a 5-image set (or eval folder) used to crash
    with IndexError. Now it is skipped with the reason, and a smaller k from the config runs."""
    tiny = digits.build("size5", size=5)
    result = by_id(digits.check(tiny, config=ONLY["distribution_shift"]), "distribution_shift")
    assert result.status is Status.SKIPPED
    assert result.message == ("skipped: needs more than k = 5 images in the set (5) and in the eval set (450); "
                              "lower distribution_shift.k to check tiny sets")
    smaller_k = by_id(digits.check(tiny, config={**ONLY["distribution_shift"], "distribution_shift": {"k": 2}}),
                      "distribution_shift")
    assert smaller_k.status is not Status.ERROR and smaller_k.details["coverage_k"] == 2
    tiny_eval = digits.folder("tiny_eval", part="eval", classes={4, 7}, per_class=2)
    on_tiny_eval = by_id(digits.check(digits.build("good", size=300), tiny_eval, config=ONLY["distribution_shift"]),
                         "distribution_shift")
    assert on_tiny_eval.status is Status.SKIPPED and "in the eval set (4)" in on_tiny_eval.message
