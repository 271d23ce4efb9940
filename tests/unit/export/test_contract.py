"""What every registered export format must do (checked for each member of ``repcurate.export.registry``): name
itself, write a folder whose ``export.json`` lists exactly its files, byte-identical for the same inputs, hold every
sample of the set in set order, tell in ``USAGE.txt`` how its files are read, and be replaceable with --overwrite."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repcurate.commands.export import export_set
from repcurate.export.base import LAYOUTS
from repcurate.export.registry import EXPORTERS, get
from tests.unit.export.conftest import write_onnx

MEMBERS = list(EXPORTERS)


def _options(name: str, tmp_path: Path) -> dict:
    if EXPORTERS[name].reads_onnx_model:
        return {"onnx_model": write_onnx(tmp_path / "model.onnx", {"pixels": ["n", 3, 8, 6]})}
    return {}


def _arrays(folder: Path, files: list[str]) -> list[np.ndarray]:
    arrays = []
    for name in files:
        if name.endswith(".npy"):
            arrays.append(np.load(folder / name, allow_pickle=False))
        elif name.endswith(".npz"):
            with np.load(folder / name, allow_pickle=False) as archive:
                arrays.extend(archive[key] for key in archive.files)
    return arrays


def test_registry_names_its_members() -> None:
    assert {"npz", "modelopt", "tflite"} <= set(EXPORTERS)
    for name, exporter in EXPORTERS.items():
        assert get(name) is exporter and exporter.name == name and exporter.summary
        assert set(exporter.layouts) <= set(LAYOUTS) and exporter.layouts
        assert exporter.default_layout is None or exporter.default_layout in exporter.layouts


@pytest.mark.parametrize("name", MEMBERS)
def test_export_lists_its_files_holds_every_sample_and_is_deterministic(name, digit_set, tmp_path) -> None:
    directory, tensors = digit_set
    options = _options(name, tmp_path)
    first = export_set(directory, name, tmp_path / "a", **options)
    second = export_set(directory, name, tmp_path / "b", **options)
    listed = json.loads((tmp_path / "a" / "export.json").read_text())["files"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == listed == first.files
    assert {"export.json", "USAGE.txt"} <= set(listed)
    for file in listed:
        if file not in ("export.json", "USAGE.txt"):  # the record and the note name their own folder
            assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
            assert file in (tmp_path / "a" / "USAGE.txt").read_text()
    arrays = _arrays(tmp_path / "a", listed)
    assert arrays, "a format's data must be readable with numpy (or the contract test must learn its reader)"
    layout = first.record["layout"]
    expected = tensors if layout == "nchw" else tensors.transpose(0, 2, 3, 1)
    for array in arrays:
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, expected)
    assert second.record["shape"] == list(expected.shape)


@pytest.mark.parametrize("name", MEMBERS)
def test_overwrite_replaces_only_its_own_output(name, digit_set, tmp_path) -> None:
    directory, _ = digit_set
    options = _options(name, tmp_path)
    out = tmp_path / "out"
    export_set(directory, name, out, **options)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    export_set(directory, name, out, overwrite=True, **options)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
