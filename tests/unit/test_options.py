"""Up-front option checks: out-of-range values stop build / confirm / doctor before any work (exit 2)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch.nn as nn

import repcurate
from repcurate.errors import UsageError
from repcurate.example_data import write_digits_folder
from repcurate.options import OptionError, require_int, require_number, require_tpc


def test_require_int_and_number() -> None:
    assert require_int(5, "--size", 1, 10) == 5
    for bad in (0, 11, True, 2.0, "3", None):
        with pytest.raises(OptionError, match=r"--size: .* is not an integer from 1 to 10"):
            require_int(bad, "--size", 1, 10)
    assert require_number(0.5, "--near-duplicate", low=0.0, high=2.0) == 0.5
    for bad in (math.nan, math.inf, -math.inf, -0.1, 2.5, "0.1", None):
        with pytest.raises(OptionError, match="--near-duplicate"):
            require_number(bad, "--near-duplicate", low=0.0, high=2.0)
    with pytest.raises(OptionError, match="> 0"):
        require_number(0.0, "--outlier-z", low=0.0, low_open=True)
    assert isinstance(OptionError("x"), UsageError) and isinstance(OptionError("x"), ValueError)


def test_tpc_is_checked_against_the_installed_mct_without_importing_it() -> None:
    import sys

    assert require_tpc("imx500:1.0") == "imx500:1.0" and require_tpc("tflite") == "tflite"
    for bad in ("imx500:9.9", "gpu:1.0", "", ":"):
        with pytest.raises(OptionError, match="--tpc"):
            require_tpc(bad)
    with pytest.raises(OptionError, match=re.escape("imx500:1.0, imx500:4.0")):
        require_tpc("nope")
    if "model_compression_toolkit" not in sys.modules:  # (other tests in this process may have imported it)
        assert "model_compression_toolkit" not in sys.modules


# A model and a folder that would fail if they were touched: the checks must come first.
ABSENT = "no_such_file.py:make_model"


@pytest.mark.parametrize("kwargs, needle", [
    ({"seed": -1}, "--seed"), ({"seed": 2**32}, "--seed"),
    ({"outlier_z": math.nan}, "--outlier-z"), ({"outlier_z": -math.inf}, "--outlier-z"), ({"outlier_z": 0}, "--outlier-z"),
    ({"near_duplicate": math.nan}, "--near-duplicate"), ({"near_duplicate": math.inf}, "--near-duplicate"),
    ({"near_duplicate": -0.5}, "--near-duplicate"),
    ({"size": 10**40}, "--size"), ({"batch_size": 10**9}, "--batch-size"), ({"workers": 0}, "--workers"),
    ({"workers": 10**6}, "--workers"),
])
def test_build_refuses_bad_options_before_any_work(tmp_path, kwargs, needle) -> None:
    with pytest.raises(UsageError, match=needle):
        repcurate.build(tmp_path / "absent", tmp_path / "out", model=ABSENT, preprocess=ABSENT, **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, needle", [
    ({"seed": -1}, "--seed"), ({"random_sets": -5}, "--random-sets"), ({"max_eval": 0}, "--max-eval"),
    ({"weights_bits": 3}, "--weights-bits"), ({"tpc": "imx500:9"}, "--tpc"), ({"batch_size": 0}, "--batch-size"),
    ({"bias_correction": ()}, "--bias-correction"),
])
def test_confirm_refuses_bad_options_before_any_work(tmp_path, kwargs, needle) -> None:
    with pytest.raises(UsageError, match=needle):
        repcurate.confirm(tmp_path / "absent-set", ABSENT, tmp_path / "absent-eval", **kwargs)


@pytest.mark.parametrize("kwargs, needle", [
    ({"seed": -1}, "--seed"), ({"tolerance": math.nan}, "--tolerance"), ({"tolerance": -1}, "--tolerance"),
    ({"budget_minutes": 0}, "--budget-minutes"), ({"budget_minutes": math.inf}, "--budget-minutes"),
    ({"min_gain": math.nan}, "--min-gain"), ({"max_eval": 0}, "--max-eval"), ({"gptq_epochs": 0}, "--gptq-epochs"),
    ({"tpc": "gpu:1.0"}, "--tpc"), ({"weights_bits": 16}, "--weights-bits"),
])
def test_doctor_refuses_bad_options_before_any_work(tmp_path, kwargs, needle) -> None:
    with pytest.raises(UsageError, match=needle):
        repcurate.doctor(ABSENT, tmp_path / "absent-set", tmp_path / "absent-eval", **kwargs)


def _model() -> nn.Module:
    import torch

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10)).eval()


def _nan_for_bright_images(image):
    x = np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32)[None] / 255.0
    return x * np.nan if x.mean() > 0.3 else x


def test_preprocess_returning_nan_skips_those_files(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class=dict.fromkeys(range(4), 8))
    result = repcurate.build(tmp_path / "train", tmp_path / "out", size=8, model=_model(),
                             preprocess=_nan_for_bright_images, use_cache=False, progress=False)
    m = result.manifest
    bad = [s for s in m["skipped"] if s["reason"] == "non_finite"]
    assert bad and all("NaN or infinite values" in s["detail"] for s in bad)
    assert m["counts"]["usable"] == 32 - len(bad) and len(m["samples"]) == 8
    assert np.isfinite(repcurate.load(tmp_path / "out").tensors).all()


def test_preprocess_returning_only_nan_is_an_input_error(tmp_path) -> None:
    from repcurate.errors import InputError

    write_digits_folder(tmp_path / "train", per_class={0: 3, 1: 3})
    with pytest.raises(InputError, match="6 non_finite"):
        repcurate.build(tmp_path / "train", tmp_path / "out", size=4, model=_model(),
                        preprocess=lambda image: np.full((1, 8, 8), np.inf, np.float32), use_cache=False, progress=False)
    assert not (tmp_path / "out").exists()
