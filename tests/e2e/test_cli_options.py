"""Property-based: generated option values for build / confirm / doctor end in a clean exit, never a traceback.

Run in-process (``repcurate_cli.main.main``): an invalid value must be refused (exit 2) before any work,
so the files the command names need not exist — a valid value gets past the checks and meets the absent
input instead (exit 3). A few valid values then run a real build on a tiny folder with a tiny model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcurate.example_data import write_digits_folder
from repcurate.options import MAX_BATCH_SIZE, MAX_COUNT, MAX_GPTQ_EPOCHS, MAX_RANDOM_SETS, MAX_SEED, MAX_WORKERS
from repcurate_cli.main import main

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

#: option → (type argparse applies, the oracle: is a parsed value in range?)
BUILD_OPTIONS = {
    "--size": (int, lambda v: 1 <= v <= MAX_COUNT),
    "--seed": (int, lambda v: 0 <= v <= MAX_SEED),
    "--batch-size": (int, lambda v: 1 <= v <= MAX_BATCH_SIZE),
    "--workers": (int, lambda v: 1 <= v <= MAX_WORKERS),
    "--outlier-z": (float, lambda v: math.isfinite(v) and v > 0),
    "--near-duplicate": (float, lambda v: math.isfinite(v) and v >= 0),
}
CONFIRM_OPTIONS = {
    "--random-sets": (int, lambda v: 0 <= v <= MAX_RANDOM_SETS),
    "--batch-size": (int, lambda v: 1 <= v <= MAX_BATCH_SIZE),
    "--max-eval": (int, lambda v: 1 <= v <= MAX_COUNT),
    "--seed": (int, lambda v: 0 <= v <= MAX_SEED),
}
DOCTOR_OPTIONS = {
    "--tolerance": (float, lambda v: math.isfinite(v) and 0 <= v <= 100),
    "--budget-minutes": (float, lambda v: math.isfinite(v) and v > 0),
    "--min-gain": (float, lambda v: math.isfinite(v) and 0 <= v <= 100),
    "--max-eval": (int, lambda v: 1 <= v <= MAX_COUNT),
    "--gptq-epochs": (int, lambda v: 1 <= v <= MAX_GPTQ_EPOCHS),
    "--batch-size": (int, lambda v: 1 <= v <= MAX_BATCH_SIZE),
    "--seed": (int, lambda v: 0 <= v <= MAX_SEED),
}

VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from([-1, 0, 1, 2, 100, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 10**40]).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e308", "1e309", "-0.0", "0.5", "2.0000001", "1_0", " 3", "٣"]),
    st.text(max_size=6),
)


def _expected(kind: type, in_range, text: str) -> int:
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        return 2  # argparse refuses it
    return 0 if in_range(value) else 2


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code if isinstance(exc.code, int) else 2
    err = capsys.readouterr().err
    return code, err


def _check(capsys, argv: list[str], option: str, text: str, kind: type, in_range) -> None:
    code, err = _run(capsys, [*argv, f"{option}={text}"])
    assert "Traceback" not in err, err
    assert 0 <= code <= 4, (code, err)
    if _expected(kind, in_range, text) == 2:
        assert code == 2, (option, text, err)
        assert option in err or "argument" in err, err  # the message names the option
    else:
        assert code == 3, (option, text, err)  # past the checks, stopped by the absent input


@SETTINGS
@given(option=st.sampled_from(sorted(BUILD_OPTIONS)), text=VALUES)
def test_build_options_exit_cleanly(tmp_path, capsys, option, text) -> None:
    absent = tmp_path / "absent"
    argv = ["build", "--train-dir", str(absent), "--out", str(tmp_path / "out"), "--no-cache",
            "--model", f"{absent}.py:make_model", "--preprocess", f"{absent}.py:preprocess"]
    _check(capsys, argv, option, text, *BUILD_OPTIONS[option])
    assert not (tmp_path / "out").exists()


@SETTINGS
@given(option=st.sampled_from(sorted(CONFIRM_OPTIONS)), text=VALUES)
def test_confirm_options_exit_cleanly(tmp_path, capsys, option, text) -> None:
    argv = ["confirm", "--repset", str(tmp_path / "absent-set"), "--model", "absent.py:make_model",
            "--eval-dir", str(tmp_path / "absent-eval")]
    _check(capsys, argv, option, text, *CONFIRM_OPTIONS[option])


@SETTINGS
@given(option=st.sampled_from(sorted(DOCTOR_OPTIONS)), text=VALUES)
def test_doctor_options_exit_cleanly(tmp_path, capsys, option, text) -> None:
    argv = ["doctor", "--repset", str(tmp_path / "absent-set"), "--model", "absent.py:make_model",
            "--eval-dir", str(tmp_path / "absent-eval")]
    _check(capsys, argv, option, text, *DOCTOR_OPTIONS[option])


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["confirm", "doctor"]), tpc=st.one_of(st.text(max_size=12), st.sampled_from(
    ["imx500:1.0", "imx500:6.0", "tflite", "qnnpack:1.0", "imx500:2.0", "imx500:", ":1.0", "IMX500:1.0"])))
def test_tpc_is_judged_before_any_work(tmp_path, capsys, command, tpc) -> None:
    code, err = _run(capsys, [command, "--repset", str(tmp_path / "absent-set"), "--model", "absent.py:make_model",
                              "--eval-dir", str(tmp_path / "absent-eval"), f"--tpc={tpc}"])
    assert "Traceback" not in err and code in (2, 3), (code, err)
    known = {"imx500:1.0", "imx500:4.0", "imx500:5.0", "imx500:6.0", "tflite:1.0", "qnnpack:1.0"}
    device, _, version = tpc.partition(":")
    assert code == (3 if f"{device}:{version or '1.0'}" in known else 2), (tpc, err)


TINY_MODEL = '''
import numpy as np
import torch
import torch.nn as nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10)).eval()


def preprocess(image):
    return torch.from_numpy(np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32)[None] / 255.0)
'''


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("tiny")
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(3), 5))
    (work / "tiny_model.py").write_text(TINY_MODEL)
    return work


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.sampled_from([
    ["--seed", "4294967295"], ["--near-duplicate", "0"], ["--near-duplicate", "2"], ["--outlier-z", "1e-9"],
    ["--batch-size", "1", "--workers", "1"], ["--size", "2147483647"], ["--batch-size", "65536", "--workers", "256"],
]))
def test_valid_edge_values_build_for_real(tiny_project, capsys, extra) -> None:
    out = tiny_project / "out"
    model = tiny_project / "tiny_model.py"
    code, err = _run(capsys, ["build", "--train-dir", str(tiny_project / "train"), "--out", str(out), "--overwrite",
                              "--no-cache", "--size", "6", "--model", f"{model}:make_model",
                              "--preprocess", f"{model}:preprocess", "-q", *extra])
    assert code == 0 and "Traceback" not in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["samples"]) == (15 if "2147483647" in extra else 6)


@pytest.mark.parametrize("command", ["confirm", "doctor"])
@pytest.mark.parametrize("value", ["0", "-3", str(MAX_BATCH_SIZE + 1)])
def test_batch_size_out_of_range_exits_2_naming_it_before_any_work(tmp_path, capsys, command, value) -> None:
    code, err = _run(capsys, [command, "--repset", str(tmp_path / "absent-set"), "--model", "absent.py:make_model",
                              "--eval-dir", str(tmp_path / "absent-eval"), "--batch-size", value])
    assert code == 2 and "--batch-size" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
