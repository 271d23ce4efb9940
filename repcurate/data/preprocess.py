"""The user's evaluation preprocessing: PIL RGB image → one model-input sample (numpy)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from repcurate.errors import InputError, UsageError, user_code_failed
from repcurate.spec import load_object


class PreprocessError(Exception):
    """The preprocessing callable failed or returned something that is not a numeric array."""


def _probe_images() -> list[Image.Image]:
    """Two fixed, deterministic images of odd sizes used to fingerprint preprocessing behaviour."""
    ys, xs = np.mgrid[0:37, 0:53]
    gradient = np.stack([xs * 4 % 256, ys * 6 % 256, (xs + ys) * 3 % 256], axis=-1).astype(np.uint8)
    rng = np.random.default_rng(20240601)
    noise = rng.integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    return [Image.fromarray(gradient, "RGB"), Image.fromarray(noise, "RGB")]


def to_numpy_sample(value: Any) -> np.ndarray:
    """Convert what a preprocessing callable returned (numpy, torch tensor, PIL) to a numpy array."""
    if isinstance(value, np.ndarray):
        array = value
    elif hasattr(value, "detach") and hasattr(value, "cpu"):
        array = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and callable(value.numpy):  # TensorFlow eager tensors
        array = np.asarray(value.numpy())
    elif isinstance(value, Image.Image):
        array = np.asarray(value)
    else:
        raise PreprocessError(f"returned {type(value).__name__}; expected a numpy array or tensor")
    if array.dtype.kind not in "fiub":
        raise PreprocessError(f"returned an array of dtype {array.dtype}; expected numbers")
    return np.ascontiguousarray(array)


@dataclass(frozen=True)
class Preprocessor:
    """A named preprocessing callable and a fingerprint of its behaviour."""

    fn: Callable[[Image.Image], Any]
    spec: str
    fingerprint: str

    def __call__(self, image: Image.Image) -> np.ndarray:
        try:
            value = self.fn(image)
        except BaseException as exc:  # SystemExit / KeyboardInterrupt raised by the code too: a failure, not a stop
            if not user_code_failed(exc):
                raise
            raise PreprocessError(f"raised {type(exc).__name__}: {exc}") from exc
        return to_numpy_sample(value)

    def sample_bytes(self) -> int:
        """Bytes of one sample as a set stores it (float32), measured on a probe image."""
        return int(self(_probe_images()[0]).size) * 4


def _probe_digest(fn: Callable[[Image.Image], Any], spec: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for image in _probe_images():
        try:
            out = to_numpy_sample(fn(image.copy()))
        except PreprocessError as exc:
            raise InputError(f"preprocessing {spec}: {exc}; fix: return a numpy array or torch tensor") from None
        except BaseException as exc:
            if not user_code_failed(exc):
                raise
            raise InputError(f"preprocessing {spec} raised {type(exc).__name__} on a test image: {exc}") from exc
        digest.update(f"{out.shape}|{out.dtype.str}|".encode())
        digest.update(out.tobytes())
    return digest.hexdigest()


def fingerprint_preprocessing(fn: Callable[[Image.Image], Any], spec: str) -> str:
    """Hash of the outputs (shape, dtype, bytes) on fixed probe images.

    Behaviour, not source text, defines the fingerprint: changing a mean or a size changes it,
    renaming the function does not. A callable that gives different outputs on the same image
    (random augmentation) is refused: a representative set must be reproducible.
    """
    first = _probe_digest(fn, spec)
    if _probe_digest(fn, spec) != first:
        raise InputError(
            f"preprocessing {spec} is not deterministic (two calls on the same image differ); "
            "fix: remove random augmentation from the evaluation preprocessing"
        )
    return first


def make_preprocessor(fn_or_spec: Callable[[Image.Image], Any] | str, *, name: str | None = None) -> Preprocessor:
    """Build a :class:`Preprocessor` from a callable or a ``file.py:fn`` / ``module:fn`` spec."""
    if isinstance(fn_or_spec, str):
        spec = fn_or_spec
        fn = load_object(spec)
    else:
        fn = fn_or_spec
        spec = name or getattr(fn, "__qualname__", None) or type(fn).__name__
    if not callable(fn):
        raise UsageError(f"preprocessing {spec} is a {type(fn).__name__}, not a callable taking a PIL image")
    return Preprocessor(fn=fn, spec=spec, fingerprint=fingerprint_preprocessing(fn, spec))
