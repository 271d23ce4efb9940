"""RepresentativeSet: equal-size batches, MCT data generator, save/load with integrity checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repcurate.errors import InputError, UsageError
from repcurate.io.atomic import write_npz
from repcurate.repset import (
    CALIBRATION_NAME,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    TENSOR_KEY,
    RepresentativeSet,
    load,
    sha256_file,
)


def digit_tensors(n: int) -> tuple[np.ndarray, list[int]]:
    """``n`` digits as NCHW float32 images in [0, 1], grey replicated to 3 channels."""
    data = load_digits()
    images = (data.images[:n] / 16.0).astype(np.float32)
    return np.ascontiguousarray(np.repeat(images[:, None], 3, axis=1)), [int(v) for v in data.target[:n]]


def make_set(n: int = 10) -> RepresentativeSet:
    tensors, digits = digit_tensors(n)
    manifest = {
        "schema_version": SCHEMA_VERSION, "root": "/data/digits", "layout": "classes",
        "samples": [{"path": f"train/{d}/img_{i:04d}.png", "label": str(d) if i % 4 else None,
                     "content_fingerprint": f"{i:032x}"} for i, d in enumerate(digits)],
    }
    return RepresentativeSet(tensors=tensors, manifest=manifest)


@pytest.mark.parametrize(("n", "batch_size", "sizes"), [
    (10, 4, [4, 3, 3]),
    (103, 32, [26, 26, 26, 25]),
    (64, 32, [32, 32]),
    (5, 32, [5]),
    (7, 1, [1] * 7),
    (33, 32, [17, 16]),
])
def test_batches_are_equal_sized_and_cover_every_row_in_order(n: int, batch_size: int, sizes: list[int]) -> None:
    rs = make_set(n)
    batches = rs.batches(batch_size)
    assert [b.shape[0] for b in batches] == sizes
    assert len(batches) == -(-n // batch_size)
    assert max(sizes) - min(sizes) <= 1
    assert all(b.flags.c_contiguous and b.dtype == np.float32 and b.shape[1:] == (3, 8, 8) for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), rs.tensors)


def test_batches_reject_bad_sizes_and_handle_an_empty_set() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        make_set(4).batches(0)
    empty = RepresentativeSet(tensors=np.zeros((0, 3, 8, 8), np.float32), manifest={"samples": []})
    assert empty.batches(8) == []
    assert list(empty.mct_data_gen(8)()) == []


def test_mct_data_gen_yields_fresh_identical_iterators() -> None:
    rs = make_set(50)
    gen = rs.mct_data_gen(batch_size=16)
    first, second = list(gen()), list(gen())
    assert len(first) == len(second) == 4
    assert [len(item) for item in first] == [1, 1, 1, 1]  # one array per model input
    assert [item[0].shape[0] for item in first] == [13, 13, 12, 12]
    for a, b in zip(first, second):
        assert isinstance(a, list)
        np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(np.concatenate([item[0] for item in first]), rs.tensors)
    # every call starts over, even when an earlier iterator was abandoned half-way
    partial = gen()
    next(partial)
    np.testing.assert_array_equal(next(gen())[0], first[0][0])


def test_properties() -> None:
    rs = make_set(5)
    assert len(rs) == 5
    assert rs.paths == [f"train/{d}/img_{i:04d}.png" for i, d in enumerate([0, 1, 2, 3, 4])]
    assert rs.labels == [None, "1", "2", "3", None]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rs = make_set(12)
    out = tmp_path / "repset"
    rs.save(out)
    assert sorted(p.name for p in out.iterdir()) == [CALIBRATION_NAME, MANIFEST_NAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repset"]
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["calibration"] == {
        "file": CALIBRATION_NAME, "key": TENSOR_KEY, "shape": [12, 3, 8, 8], "dtype": "float32",
        "sha256": sha256_file(out / CALIBRATION_NAME),
    }
    loaded = load(out)
    np.testing.assert_array_equal(loaded.tensors, rs.tensors)
    assert loaded.tensors.dtype == np.float32
    assert loaded.manifest == manifest
    assert loaded.paths == rs.paths and loaded.labels == rs.labels
    assert load(str(out)).manifest == manifest


def test_save_is_byte_deterministic(tmp_path: Path) -> None:
    make_set(12).save(tmp_path / "a")
    make_set(12).save(tmp_path / "b")
    for name in (CALIBRATION_NAME, MANIFEST_NAME):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_save_refuses_a_non_empty_directory_unless_overwriting(tmp_path: Path) -> None:
    out = tmp_path / "repset"
    make_set(6).save(out)
    with pytest.raises(UsageError):
        make_set(8).save(out)
    assert len(load(out)) == 6
    make_set(8).save(out, overwrite=True)
    assert len(load(out)) == 8


def test_load_detects_a_tampered_calibration_file(tmp_path: Path) -> None:
    out = tmp_path / "repset"
    rs = make_set(6)
    rs.save(out)
    write_npz(out / CALIBRATION_NAME, {TENSOR_KEY: rs.tensors + 0.5})  # a valid npz, other content
    with pytest.raises(InputError, match="sha256") as info:
        load(out)
    assert info.value.exit_code == 3
    raw = bytearray((out / CALIBRATION_NAME).read_bytes())
    raw[-200] ^= 0xFF
    (out / CALIBRATION_NAME).write_bytes(bytes(raw))
    with pytest.raises(InputError, match="sha256"):
        load(out)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_load_rejects_other_schema_versions(tmp_path: Path, version: object) -> None:
    out = tmp_path / "repset"
    make_set(4).save(out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    if version is None:
        del manifest["schema_version"]
    else:
        manifest["schema_version"] = version
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="schema_version"):
        load(out)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00\x01binary", b"[1, 2, 3]", b'"a string"'])
def test_load_rejects_a_corrupt_manifest(tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "repset"
    make_set(4).save(out)
    (out / MANIFEST_NAME).write_bytes(content)
    with pytest.raises(InputError, match="manifest"):
        load(out)


def test_load_reports_missing_files_and_sample_count_mismatch(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "nowhere")
    out = tmp_path / "repset"
    make_set(4).save(out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["samples"] = manifest["samples"][:3]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="4 tensors for 3 samples"):
        load(out)
    samples = manifest.pop("samples")
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="'samples' is a required property"):  # the schema, before any KeyError
        load(out)
    manifest["samples"] = samples
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    (out / CALIBRATION_NAME).unlink()
    with pytest.raises(InputError, match="not found"):
        load(out)


def test_load_rejects_an_unreadable_archive_without_a_recorded_hash(tmp_path: Path) -> None:
    out = tmp_path / "repset"
    make_set(4).save(out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    del manifest["calibration"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    (out / CALIBRATION_NAME).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="calibration"):
        load(out)


def test_mct_post_training_quantization_with_the_loaded_generator(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    mct = pytest.importorskip("model_compression_toolkit")

    out = tmp_path / "repset"
    make_set(40).save(out)
    rs = load(out)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10),
    ).eval()
    tpc = mct.get_target_platform_capabilities(tpc_version="1.0", device_type="imx500")
    quantized, _ = mct.ptq.pytorch_post_training_quantization(model, rs.mct_data_gen(batch_size=16),
                                                              target_platform_capabilities=tpc)
    assert isinstance(quantized, torch.nn.Module)
    assert quantized is not model
    device = next(quantized.parameters()).device
    images = torch.from_numpy(rs.tensors[:8]).to(device)
    with torch.no_grad():
        q_out = quantized(images)
        if isinstance(q_out, (list, tuple)):
            q_out = q_out[0]
        f_out = model.to(device)(images)
    assert tuple(q_out.shape) == (8, 10)
    assert torch.isfinite(q_out).all()
    # 8-bit fake quantisation calibrated on these images stays close to the float model
    error = (q_out - f_out).abs().max().item()
    assert error < 0.1 * f_out.abs().max().item()
