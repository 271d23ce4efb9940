"""make_preprocessor: callables and code references, behaviour fingerprints, output checks."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from repcurate.data.preprocess import (
    PreprocessError,
    Preprocessor,
    fingerprint_preprocessing,
    make_preprocessor,
    to_numpy_sample,
)
from repcurate.errors import InputError, UsageError


def resize_chw(image: Image.Image) -> np.ndarray:
    """A typical evaluation transform: resize, scale to 0..1, HWC -> CHW float32."""
    array = np.asarray(image.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return array.transpose(2, 0, 1)


def same_behaviour_other_name(img: Image.Image) -> np.ndarray:
    return np.asarray(img.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32).transpose(2, 0, 1) / 255.0


def centred(image: Image.Image) -> np.ndarray:
    return resize_chw(image) - 0.5


@pytest.fixture
def cat_image(chelsea) -> Image.Image:
    return Image.fromarray(chelsea)


def test_callable_preprocessor_returns_numpy_and_has_a_fingerprint(cat_image):
    pre = make_preprocessor(resize_chw)
    assert isinstance(pre, Preprocessor)
    assert pre.spec == "resize_chw"
    assert pre.fn is resize_chw
    assert len(pre.fingerprint) == 32 and int(pre.fingerprint, 16) >= 0
    out = pre(cat_image)
    assert isinstance(out, np.ndarray)
    assert out.shape == (3, 16, 16) and out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]  # the transpose was made contiguous
    np.testing.assert_array_equal(out, resize_chw(cat_image))


def test_explicit_name_becomes_the_spec():
    assert make_preprocessor(resize_chw, name="eval-224").spec == "eval-224"
    assert make_preprocessor(lambda im: np.asarray(im)).spec == "test_explicit_name_becomes_the_spec.<locals>.<lambda>"


def test_fingerprint_is_defined_by_behaviour_not_by_name():
    a = make_preprocessor(resize_chw).fingerprint
    assert make_preprocessor(resize_chw).fingerprint == a
    assert make_preprocessor(same_behaviour_other_name).fingerprint == a
    assert fingerprint_preprocessing(resize_chw, "x") == a
    assert make_preprocessor(centred).fingerprint != a  # a changed mean
    assert make_preprocessor(lambda im: resize_chw(im).astype(np.float64)).fingerprint != a  # same values, other dtype
    assert make_preprocessor(lambda im: resize_chw(im).reshape(3, 256)).fingerprint != a  # same bytes, other shape
    bigger = make_preprocessor(lambda im: np.asarray(im.resize((17, 17)), dtype=np.float32) / 255.0).fingerprint
    assert bigger != a


def test_random_augmentation_is_refused():
    rng = np.random.default_rng()

    def augment(image: Image.Image) -> np.ndarray:
        return resize_chw(image) + rng.normal(0.0, 0.01, size=(3, 16, 16)).astype(np.float32)

    with pytest.raises(InputError, match="not deterministic"):
        make_preprocessor(augment)


def test_seeded_randomness_inside_the_call_is_deterministic():
    def seeded_crop(image: Image.Image) -> np.ndarray:
        r = np.random.default_rng(0)
        x, y = int(r.integers(0, 5)), int(r.integers(0, 5))
        return np.asarray(image.crop((x, y, x + 30, y + 30)))

    assert len(make_preprocessor(seeded_crop).fingerprint) == 32


def test_torch_tensor_output_is_converted_to_numpy(cat_image):
    def to_tensor(image: Image.Image) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1) / 255.0
        return t.requires_grad_(True)  # a tensor still attached to autograd

    pre = make_preprocessor(to_tensor)
    out = pre(cat_image)
    assert isinstance(out, np.ndarray)
    assert out.shape == (3, 8, 8) and out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    expected = np.asarray(cat_image.resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-7)


def test_tensor_and_numpy_with_equal_values_share_a_fingerprint():
    as_numpy = make_preprocessor(resize_chw).fingerprint
    as_tensor = make_preprocessor(lambda im: torch.from_numpy(resize_chw(im))).fingerprint
    assert as_numpy == as_tensor


def test_pil_output_is_accepted(cat_image):
    pre = make_preprocessor(lambda im: im.resize((10, 12)))
    out = pre(cat_image)
    assert out.shape == (12, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.asarray(cat_image.resize((10, 12))))


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda im: "a caption", r"returned str; expected a numpy array or tensor"),
        (lambda im: np.asarray(im).tolist(), r"returned list"),
        (lambda im: np.asarray(im).astype(np.complex64), r"dtype complex64; expected numbers"),
        (lambda im: np.array(["a", "b"]), r"dtype <U1; expected numbers"),
        (lambda im: np.array([im], dtype=object), r"dtype object"),
    ],
)
def test_outputs_that_are_not_numeric_arrays_are_refused_up_front(fn, message):
    with pytest.raises(InputError, match=message):
        make_preprocessor(fn, name="bad")


def test_a_preprocessor_that_raises_on_the_probe_images_is_refused():
    def needs_square(image: Image.Image) -> np.ndarray:
        if image.width != image.height:
            raise ValueError("expected a square image")
        return np.asarray(image)

    expected = (r"preprocessing test_a_preprocessor_that_raises_on_the_probe_images_is_refused\.<locals>\.needs_square"
                r" raised ValueError on a test image: expected a square image")
    with pytest.raises(InputError, match=expected) as info:
        make_preprocessor(needs_square)
    assert isinstance(info.value.__cause__, ValueError)


def test_failures_on_real_images_are_preprocess_errors(digits, cat_image):
    def rgb_only(image: Image.Image) -> np.ndarray:
        return np.asarray(image, dtype=np.float32).reshape(image.height, image.width, 3)

    pre = make_preprocessor(rgb_only)
    assert pre(cat_image).shape == (300, 451, 3)
    grey = Image.fromarray(digits[0])  # a mode-L image the function cannot reshape
    with pytest.raises(PreprocessError, match=r"raised ValueError: cannot reshape") as info:
        pre(grey)
    assert isinstance(info.value.__cause__, ValueError)


def test_outputs_checked_on_every_call(digits, cat_image):
    def text_for_small(image: Image.Image):
        return "too small" if image.width < 16 else np.asarray(image)

    pre = make_preprocessor(text_for_small)
    with pytest.raises(PreprocessError, match="returned str"):
        pre(Image.fromarray(digits[0]).convert("RGB"))
    assert pre(cat_image).shape == (300, 451, 3)


def test_to_numpy_sample_directly():
    bools = to_numpy_sample(np.array([True, False]))
    assert bools.dtype == np.bool_
    ints = to_numpy_sample(torch.arange(6, dtype=torch.int64).reshape(2, 3).t())
    assert ints.tolist() == [[0, 3], [1, 4], [2, 5]] and ints.flags["C_CONTIGUOUS"]
    with pytest.raises(PreprocessError):
        to_numpy_sample(None)


def test_file_spec(tmp_path, cat_image):
    module = tmp_path / "my_eval_prep.py"
    module.write_text(
        textwrap.dedent(
            """
            import numpy as np
            from PIL import Image

            SIZE = 16

            def preprocess(image):
                array = np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
                return array.transpose(2, 0, 1)

            class Holder:
                @staticmethod
                def transform(image):
                    return preprocess(image)
            """
        ),
        encoding="utf-8",
    )
    spec = f"{module}:preprocess"
    pre = make_preprocessor(spec)
    assert pre.spec == spec
    assert pre.fingerprint == make_preprocessor(resize_chw).fingerprint  # same behaviour, same fingerprint
    np.testing.assert_array_equal(pre(cat_image), resize_chw(cat_image))
    assert make_preprocessor(f"{module}:Holder.transform").fingerprint == pre.fingerprint
    with pytest.raises(UsageError, match=r"is a int, not a callable"):
        make_preprocessor(f"{module}:SIZE")
    with pytest.raises(InputError, match="has no attribute 'missing'"):
        make_preprocessor(f"{module}:missing")


def test_module_spec(tmp_path, monkeypatch, cat_image):
    name = f"repcurate_test_prep_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "import numpy as np\n\ndef grey(image):\n    return np.asarray(image.convert('L'), dtype=np.uint8)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    pre = make_preprocessor(f"{name}:grey")
    assert pre.spec == f"{name}:grey"
    np.testing.assert_array_equal(pre(cat_image), np.asarray(cat_image.convert("L")))
    sys.modules.pop(name, None)


def test_bad_specs():
    with pytest.raises(UsageError, match="is not a code reference"):
        make_preprocessor("no_colon_here")
    with pytest.raises(InputError, match="file not found"):
        make_preprocessor("does/not/exist.py:fn")
    with pytest.raises(InputError, match="cannot import module"):
        make_preprocessor("repcurate_no_such_module_xyz:fn")
