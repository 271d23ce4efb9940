"""``preprocessing_parity`` through ``repcurate.check``: a set built with one pipeline, evaluated with
another (``eval_preprocess=``). Digits with the small CNN; colour photos with the bundled
EfficientNet-Lite0 embedding and a torchvision-style ImageNet pipeline for the set's tensors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repcurate.checks.base import Status
from tests.unit.checks.checks_testdata import write_photo_crops


def _grey8(image: Image.Image, size: int = 8) -> np.ndarray:
    return np.asarray(image.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


# The digits CNN's own pipeline is (grey8 − 0.3) / 0.4 with shape (1, 8, 8).
def forgets_normalisation(image):
    return _grey8(image)[None]


def keeps_0_255(image):
    return _grey8(image)[None] * 255.0


def other_mean_std(image):
    return ((_grey8(image) - 0.5) / 0.5)[None]


def channels_last(image):
    return ((_grey8(image) - 0.3) / 0.4)[:, :, None]


def resized_16(image):
    return ((_grey8(image, 16) - 0.3) / 0.4)[None]


def rgb_input(image):
    rgb = np.asarray(image.convert("RGB").resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255.0
    return ((rgb - 0.3) / 0.4).transpose(2, 0, 1)


def inverted(image):
    return ((1.0 - _grey8(image) - 0.3) / 0.4)[None]


def float64_pipeline(image):
    return ((_grey8(image).astype(np.float64) - 0.3) / 0.4)[None]


def same_pipeline(image):
    return ((_grey8(image) - 0.3) / 0.4)[None]


DIGIT_DEFECTS = [
    (forgets_normalisation, "value_scale", "the set is standardised, the evaluation pipeline gives 0..1"),
    (keeps_0_255, "value_scale", "the set is standardised, the evaluation pipeline gives 0..255"),
    (other_mean_std, "normalisation", "mean/std normalisation differs"),
    (channels_last, "layout", "HWC (channels last) (8, 8, 1)"),
    (resized_16, "spatial_size", "the evaluation pipeline gives 16×16"),
    (rgb_input, "channel_count", "the set has 1, the evaluation pipeline gives 3"),
    (inverted, "inverted", "intensities are inverted"),
    (float64_pipeline, "dtype", "the set is float32, the evaluation pipeline gives float64"),
]


@pytest.mark.parametrize("pipeline, cause, needle", DIGIT_DEFECTS, ids=[d[0].__name__ for d in DIGIT_DEFECTS])
def test_planted_digit_pipeline_defect_fails_with_cause(digits, good_set, by_id, pipeline, cause, needle):
    result = digits.check(good_set, eval_preprocess=pipeline, config={"skip": ["distribution_shift", "duplicates"]})
    parity = by_id(result, "preprocessing_parity")
    assert parity.status is Status.FAIL, parity.message
    assert parity.details["cause"] == cause
    assert needle in parity.message
    assert "fix:" in parity.message
    # every compared file (8 set files against their stored tensors, 8 eval files through both pipelines) agrees
    assert parity.details["compared"] == 16 and parity.details["matched"] == 0
    assert parity.details["causes"] == {cause: 16}
    assert parity.value == 0.0
    assert result.verdict == "fail"


def test_identical_pipeline_passes_with_value_one(digits, good_set, by_id):
    own = by_id(digits.check(good_set, config={"skip": ["distribution_shift", "duplicates"]}), "preprocessing_parity")
    assert own.status is Status.PASS and own.value == 1.0
    assert own.details["compared"] == 8  # the set's own pipeline: stored tensors vs recomputed
    assert "cause" not in own.details

    same = by_id(digits.check(good_set, eval_preprocess=same_pipeline,
                              config={"skip": ["distribution_shift", "duplicates"]}), "preprocessing_parity")
    assert same.status is Status.PASS and same.value == 1.0
    assert same.details["compared"] == 16
    assert same.details["eval_pipeline"] == "same_pipeline"
    assert same.message == "the evaluation pipeline reproduces the set's tensors on 16 files"


def test_samples_parameter_controls_the_comparisons(digits, good_set, by_id):
    result = digits.check(good_set, eval_preprocess=other_mean_std,
                          config={"preprocessing_parity": {"samples": 3}, "skip": ["distribution_shift", "duplicates"]})
    parity = by_id(result, "preprocessing_parity")
    assert parity.details["compared"] == 6
    assert {c["source"] for c in parity.details["comparisons"]} == {"repset", "eval"}


PHOTO_PIPELINE = '''
import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _rgb01(image):
    return np.asarray(image.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32) / 255.0


def preprocess(image):
    """torchvision: Resize(64) + ToTensor + Normalize(ImageNet)."""
    return np.ascontiguousarray(((_rgb01(image) - MEAN) / STD).transpose(2, 0, 1))


def preprocess_opencv(image):
    """The same pipeline fed by cv2.imread (BGR)."""
    bgr = Image.fromarray(np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1]))
    return preprocess(bgr)


def preprocess_no_normalize(image):
    """ToTensor only: the Normalize was forgotten."""
    return np.ascontiguousarray(_rgb01(image).transpose(2, 0, 1))
'''


@pytest.fixture(scope="module")
def photo_project(digits):
    """Colour crops of 8 scikit-image photos; a set built with the bundled EfficientNet-Lite0 (the
    default model) and an ImageNet-normalised pipeline for its tensors."""
    import repcurate

    work = digits.work / "photos"
    write_photo_crops(work / "train", per_photo=8, seed=0)
    write_photo_crops(work / "eval", per_photo=3, seed=1)
    pipeline = work / "photo_pipeline.py"
    pipeline.write_text(PHOTO_PIPELINE)
    repcurate.build(work / "train", work / "repset", size=40, preprocess=f"{pipeline}:preprocess",
                    cache_dir=digits.cache, progress=False)
    return work, pipeline


@pytest.mark.slow
@pytest.mark.parametrize("function, cause, needle", [
    ("preprocess_opencv", "channel_order", "RGB vs BGR"),
    ("preprocess_no_normalize", "value_scale", "0.229·set + 0.485, 0.224·set + 0.456, 0.225·set + 0.406"),
    ("preprocess", None, "reproduces the set's tensors"),
])
def test_colour_pipeline_defects_with_default_model(digits, photo_project, by_id, function, cause, needle):
    work, pipeline = photo_project
    result = digits.check(work / "repset", work / "eval", eval_preprocess=f"{pipeline}:{function}",
                          config={"skip": ["activation_ranges"]})
    parity = by_id(result, "preprocessing_parity")
    assert needle in parity.message
    if cause is None:
        assert parity.status is Status.PASS and parity.value == 1.0
        # the whole suite passes on the correct colour set
        assert result.verdict in {"pass", "warn"}, [(c.id, c.status, c.message) for c in result.checks]
        assert by_id(result, "class_coverage").status is Status.PASS
        assert by_id(result, "distribution_shift").status is not Status.FAIL
    else:
        assert parity.status is Status.FAIL
        assert parity.details["cause"] == cause
        assert parity.details["causes"] == {cause: parity.details["compared"]}
        assert result.verdict == "fail"
