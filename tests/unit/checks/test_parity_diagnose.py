"""``repcurate.checks.parity.diagnose`` on real image tensors: each planted pipeline difference gets
the right cause. Colour cases use scikit-image photos (a BGR swap is invisible on grey digits)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repcurate.checks.parity import MAJOR_CAUSES, diagnose
from repcurate.example_data import digit_to_image
from tests.unit.checks.checks_testdata import PHOTOS, _digits, photo

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def rgb01(image: Image.Image, size: int = 32, resample: int = Image.BILINEAR) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((size, size), resample), dtype=np.float32) / 255.0


def imagenet(image: Image.Image, size: int = 32, resample: int = Image.BILINEAR) -> np.ndarray:
    """torchvision's usual evaluation pipeline: ToTensor + Normalize(ImageNet mean, std), CHW float32."""
    return np.ascontiguousarray(((rgb01(image, size, resample) - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))


def bgr(image: Image.Image) -> Image.Image:
    """What OpenCV's imread hands a pipeline written for PIL: the channels reversed."""
    return Image.fromarray(np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1]), "RGB")


def digit_pipeline(image: Image.Image) -> np.ndarray:
    """The digits CNN's pipeline (tests/e2e/model_files.py): grey 8×8, (x/255 − 0.3) / 0.4, (1, 8, 8)."""
    grey = np.asarray(image.convert("L").resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255.0
    return ((grey - 0.3) / 0.4)[None]


@pytest.fixture(scope="module")
def digit_image() -> Image.Image:
    images, _ = _digits()
    return digit_to_image(images[42]).convert("RGB")


# Each case: (name, the evaluation pipeline's output given the raw image, expected cause).
COLOUR_CASES = [
    ("forgets Normalize (0..1 vs standardised)", lambda im: np.ascontiguousarray(rgb01(im).transpose(2, 0, 1)), "value_scale"),
    ("0..255 vs standardised", lambda im: np.ascontiguousarray((rgb01(im) * 255.0).transpose(2, 0, 1)), "value_scale"),
    ("Normalize(0.5, 0.5) vs ImageNet mean/std",
     lambda im: np.ascontiguousarray(((rgb01(im) - 0.5) / 0.5).transpose(2, 0, 1)), "normalisation"),
    ("BGR decode, same Normalize", lambda im: imagenet(bgr(im)), "channel_order"),
    ("channels last", lambda im: (rgb01(im) - IMAGENET_MEAN) / IMAGENET_STD, "layout"),
    ("28×28 instead of 32×32", lambda im: imagenet(im, size=28), "spatial_size"),
    ("greyscale (1 channel)", lambda im: ((np.asarray(im.convert("L").resize((32, 32), Image.BILINEAR), np.float32) / 255.0
                                          - 0.449) / 0.226)[None], "channel_count"),
    ("greyscale without a channel axis", lambda im: (np.asarray(im.convert("L").resize((32, 32), Image.BILINEAR), np.float32)
                                                     / 255.0 - 0.449) / 0.226, "channel_count"),
    ("inverted intensities", lambda im: np.ascontiguousarray(((1.0 - rgb01(im) - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)),
     "inverted"),
    ("float64, same values", lambda im: imagenet(im).astype(np.float64), "dtype"),
    ("bicubic instead of bilinear", lambda im: imagenet(im, resample=Image.BICUBIC), "resampling"),
    ("identical pipeline", imagenet, None),
]


@pytest.mark.parametrize("photo_name", PHOTOS[:6])
@pytest.mark.parametrize("case, eval_pipeline, cause", COLOUR_CASES, ids=[c[0] for c in COLOUR_CASES])
def test_colour_photo_differences_are_named(photo_name, case, eval_pipeline, cause):
    image = photo(photo_name)
    diagnosis = diagnose(imagenet(image), eval_pipeline(image))
    assert diagnosis.cause == cause, (case, diagnosis.message)
    if cause is None:
        assert diagnosis.message == "identical"
    else:
        assert "fix:" in diagnosis.message
        assert (cause in MAJOR_CAUSES) == (cause != "resampling")


def test_value_scale_message_shows_the_missing_per_channel_normalisation():
    image = photo("chelsea")
    diagnosis = diagnose(imagenet(image), rgb01(image).transpose(2, 0, 1))
    assert diagnosis.cause == "value_scale"
    # evaluation = std·set + mean per channel: the message gives the exact Normalize that is missing.
    assert "0.229·set + 0.485, 0.224·set + 0.456, 0.225·set + 0.406" in diagnosis.message
    assert "the set is standardised, the evaluation pipeline gives 0..1" in diagnosis.message
    assert "add the missing mean/std normalisation" in diagnosis.message


def test_bgr_without_normalisation_is_channel_order():
    image = photo("coffee")
    reference = np.ascontiguousarray(rgb01(image).transpose(2, 0, 1))
    diagnosis = diagnose(reference, np.ascontiguousarray(rgb01(bgr(image)).transpose(2, 0, 1)))
    assert diagnosis.cause == "channel_order"
    assert "RGB vs BGR" in diagnosis.message


def test_grey_photo_channel_swap_is_invisible():
    """A greyscale photo in RGB has equal channels: reversing them changes nothing, and nothing is reported."""
    image = photo("astronaut").convert("L").convert("RGB")
    assert diagnose(imagenet(image), imagenet(bgr(image))).cause is None


DIGIT_CASES = [
    ("forgets normalisation: 0..1", lambda im: np.asarray(im.convert("L").resize((8, 8), Image.BILINEAR), np.float32)[None] / 255.0,
     "value_scale", "the set is standardised, the evaluation pipeline gives 0..1"),
    ("0..255", lambda im: np.asarray(im.convert("L").resize((8, 8), Image.BILINEAR), np.float32)[None],
     "value_scale", "the set is standardised, the evaluation pipeline gives 0..255"),
    ("mean 0.5 / std 0.5", lambda im: (digit_pipeline(im) * 0.4 + 0.3 - 0.5) / 0.5, "normalisation", "mean/std normalisation differs"),
    ("channels last", lambda im: np.ascontiguousarray(digit_pipeline(im).transpose(1, 2, 0)), "layout",
     "the set is CHW (channels first) (1, 8, 8), the evaluation pipeline gives HWC (channels last) (8, 8, 1)"),
    ("no channel axis", lambda im: digit_pipeline(im)[0], "layout", "has no channel axis"),
    ("16×16", lambda im: ((np.asarray(im.convert("L").resize((16, 16), Image.BILINEAR), np.float32) / 255.0 - 0.3) / 0.4)[None],
     "spatial_size", "the set is 8×8, the evaluation pipeline gives 16×16"),
    ("RGB instead of grey", lambda im: np.repeat(digit_pipeline(im), 3, axis=0), "channel_count",
     "the set has 1, the evaluation pipeline gives 3"),
    ("inverted", lambda im: (1.0 - (digit_pipeline(im) * 0.4 + 0.3) - 0.3) / 0.4, "inverted", "intensities are inverted"),
    ("float64", lambda im: digit_pipeline(im).astype(np.float64), "dtype", "the set is float32, the evaluation pipeline gives float64"),
]


@pytest.mark.parametrize("case, eval_pipeline, cause, needle", DIGIT_CASES, ids=[c[0] for c in DIGIT_CASES])
def test_digit_differences_are_named(digit_image, case, eval_pipeline, cause, needle):
    diagnosis = diagnose(digit_pipeline(digit_image), eval_pipeline(digit_image))
    assert diagnosis.cause == cause, diagnosis.message
    assert needle in diagnosis.message


def test_identical_digit_pipeline(digit_image):
    assert diagnose(digit_pipeline(digit_image), digit_pipeline(digit_image.copy())).cause is None


def test_constant_image_normalised_differently_is_normalisation():
    """A blank frame (zero variance) has no correlation to fit; an offset still explains it."""
    blank = Image.new("RGB", (40, 40), (90, 90, 90))
    diagnosis = diagnose(imagenet(blank), np.ascontiguousarray(((rgb01(blank) - 0.5) / 0.5).transpose(2, 0, 1)))
    assert diagnosis.cause in {"normalisation", "value_scale"}, diagnosis.message
