"""export_set: the model decides the key and the layout, bad combinations are refused with the documented errors
before anything is written, and a tampered set is refused like everywhere else."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repcurate.commands.export import export_set
from repcurate.errors import InputError, UsageError
from repcurate.export.formats import NPY_FILE, NPZ_FILE
from tests.unit.export.conftest import save_digit_set, write_onnx


def npz_array(folder: Path) -> tuple[str, np.ndarray]:
    with np.load(folder / NPZ_FILE, allow_pickle=False) as archive:
        [key] = archive.files
        return key, archive[key]


def test_the_onnx_model_names_the_key_and_picks_the_layout(digit_set, tmp_path) -> None:
    directory, tensors = digit_set  # a PyTorch-style (C, H, W) set
    as_stored = write_onnx(tmp_path / "nchw.onnx", {"input.1": ["batch", 3, 8, 6]})
    channels_last = write_onnx(tmp_path / "nhwc.onnx", {"image": [1, 8, 6, 3]})
    export_set(directory, "npz", tmp_path / "a", onnx_model=as_stored)
    key, array = npz_array(tmp_path / "a")
    assert key == "input.1"
    np.testing.assert_array_equal(array, tensors)
    result = export_set(directory, "npz", tmp_path / "b", onnx_model=channels_last)
    key, array = npz_array(tmp_path / "b")
    assert key == "image" and result.record["layout"] == "nhwc"
    np.testing.assert_array_equal(array, tensors.transpose(0, 2, 3, 1))
    export_set(directory, "npz", tmp_path / "c", input_name="x", layout="nhwc")  # no model: name and layout as told
    key, array = npz_array(tmp_path / "c")
    assert key == "x" and array.shape == (7, 8, 6, 3)


def test_tflite_writes_channels_last_from_either_kind_of_set(digit_set, tmp_path) -> None:
    directory, tensors = digit_set
    export_set(directory, "tflite", tmp_path / "torch-set")
    np.testing.assert_array_equal(np.load(tmp_path / "torch-set" / NPY_FILE), tensors.transpose(0, 2, 3, 1))
    keras_set = tmp_path / "keras-set"
    keras_tensors = save_digit_set(keras_set, framework="keras", channels_last=True)
    export_set(keras_set, "tflite", tmp_path / "keras-out")
    np.testing.assert_array_equal(np.load(tmp_path / "keras-out" / NPY_FILE), keras_tensors)
    with pytest.raises(UsageError, match="drop --layout nchw"):
        export_set(directory, "tflite", tmp_path / "x", layout="nchw")
    with pytest.raises(UsageError, match="does not read an ONNX model"):
        export_set(directory, "tflite", tmp_path / "x", onnx_model=write_onnx(tmp_path / "m.onnx", {"a": [1, 3, 8, 6]}))


def test_a_set_of_unknown_layout_is_written_as_stored_and_refuses_layout(tmp_path) -> None:
    directory = tmp_path / "repset"
    tensors = save_digit_set(directory, framework=None)
    export_set(directory, "tflite", tmp_path / "as-is")
    np.testing.assert_array_equal(np.load(tmp_path / "as-is" / NPY_FILE), tensors)
    with pytest.raises(UsageError, match="--layout needs image samples of a known layout"):
        export_set(directory, "npz", tmp_path / "x", input_name="x", layout="nhwc")


def test_several_inputs_need_input_name(digit_set, tmp_path) -> None:
    directory, _ = digit_set
    two = write_onnx(tmp_path / "two.onnx", {"pixels": ["n", 3, 8, 6], "mask": ["n", 3, 8, 6]})
    with pytest.raises(UsageError, match=r"has 2 inputs \(pixels, mask\).*--input-name"):
        export_set(directory, "npz", tmp_path / "x", onnx_model=two)
    with pytest.raises(UsageError, match=r"'image' is not an input of .*two.onnx \(its inputs: pixels, mask\)"):
        export_set(directory, "npz", tmp_path / "x", onnx_model=two, input_name="image")
    export_set(directory, "npz", tmp_path / "mask", onnx_model=two, input_name="mask")
    assert npz_array(tmp_path / "mask")[0] == "mask"
    with pytest.raises(UsageError, match=r"every model input \(pixels, mask\)"):  # ModelOpt asserts all of them
        export_set(directory, "modelopt", tmp_path / "x", onnx_model=two, input_name="mask")
    assert not (tmp_path / "x").exists()


def test_model_mismatches_are_bad_input(digit_set, tmp_path) -> None:
    directory, _ = digit_set
    with pytest.raises(InputError, match=r"takes \('\?', 3, 32, 32\).*\(3, 8, 6\)"):
        export_set(directory, "npz", tmp_path / "x", onnx_model=write_onnx(tmp_path / "big.onnx", {"p": ["n", 3, 32, 32]}))
    with pytest.raises(InputError, match="takes uint8"):
        export_set(directory, "npz", tmp_path / "x", onnx_model=write_onnx(tmp_path / "u8.onnx", {"p": ["n", 3, 8, 6]}, "uint8"))
    with pytest.raises(InputError, match="fixed batch of 4"):  # 7 samples: ModelOpt would make uneven steps
        export_set(directory, "modelopt", tmp_path / "x", onnx_model=write_onnx(tmp_path / "b4.onnx", {"p": [4, 3, 8, 6]}))
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a model")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        export_set(directory, "npz", tmp_path / "x", onnx_model=tmp_path / "junk.onnx")
    with pytest.raises(InputError, match="not found"):
        export_set(directory, "npz", tmp_path / "x", onnx_model=tmp_path / "missing.onnx")
    assert not (tmp_path / "x").exists()


def test_missing_names_and_models_are_usage_errors(digit_set, tmp_path) -> None:
    directory, _ = digit_set
    with pytest.raises(UsageError, match=r"--onnx-model model\.onnx .* or --input-name NAME"):
        export_set(directory, "npz", tmp_path / "x")
    with pytest.raises(UsageError, match="fix: pass --onnx-model"):
        export_set(directory, "modelopt", tmp_path / "x", input_name="pixels")
    with pytest.raises(UsageError, match="unknown export format 'npy'"):
        export_set(directory, "npy", tmp_path / "x")


def test_outputs_never_land_on_inputs_or_foreign_folders(digit_set, tmp_path) -> None:
    directory, _ = digit_set
    model = write_onnx(tmp_path / "model.onnx", {"pixels": ["n", 3, 8, 6]})
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    for out in (directory, directory / "inner", tmp_path):
        with pytest.raises(UsageError, match="never writes over its inputs"):
            export_set(directory, "npz", out, onnx_model=model)
    with pytest.raises(UsageError, match="is the ONNX model"):
        export_set(directory, "npz", model, onnx_model=model)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(UsageError, match="not written by repcurate"):
        export_set(directory, "npz", foreign, onnx_model=model, overwrite=True)
    export_set(directory, "npz", tmp_path / "ours", onnx_model=model)
    with pytest.raises(UsageError, match="pass --overwrite"):
        export_set(directory, "npz", tmp_path / "ours", onnx_model=model)
    (tmp_path / "ours" / "notes.txt").write_text("added by the user")
    with pytest.raises(UsageError, match=r"notes\.txt is not a file repcurate writes"):
        export_set(directory, "npz", tmp_path / "ours", onnx_model=model, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep" and (tmp_path / "ours" / "notes.txt").exists()
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_a_tampered_set_is_refused(digit_set, tmp_path) -> None:
    directory, _ = digit_set
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["calibration"]["sha256"] = "0" * 64
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="does not match the manifest's sha256"):
        export_set(directory, "npz", tmp_path / "x", input_name="pixels")
    with pytest.raises(InputError, match=r"manifest\.json: not found"):
        export_set(tmp_path / "nowhere", "npz", tmp_path / "x", input_name="pixels")
    assert not (tmp_path / "x").exists()
