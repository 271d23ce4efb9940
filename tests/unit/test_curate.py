"""`repcurate.build` as a library call with model and preprocessing objects."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import repcurate
from repcurate.errors import UsageError
from repcurate.example_data import write_digits_folder


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10)).eval()


def _preprocess(image):
    return torch.from_numpy(np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32)[None] / 255.0)


def test_build_in_memory_with_objects_proportional(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={0: 30, 1: 10})
    result = repcurate.build(tmp_path / "train", size=8, balance="proportional", model=_model(),
                             preprocess=_preprocess, use_cache=False, progress=False)
    assert result.out is None and sorted(p.name for p in tmp_path.iterdir()) == ["train"]
    repset = result.representative_set
    assert {c["label"]: c["quota"] for c in result.manifest["classes"]} == {"0": 6, "1": 2}
    assert repset.tensors.shape == (8, 1, 8, 8)
    assert result.manifest["model"]["spec"] == "Sequential"
    assert result.manifest["preprocessing"]["spec"] == "_preprocess"
    json.dumps(result.summary())
    batches = [b[0] for b in repset.mct_data_gen(batch_size=3)()]
    assert [len(b) for b in batches] == [3, 3, 2]


def test_build_writes_and_load_reads_back(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={3: 6, 4: 6})
    result = repcurate.build(tmp_path / "train", tmp_path / "out", size=6, model=_model(), preprocess=_preprocess,
                             cache_dir=tmp_path / "cache", progress=False)
    loaded = repcurate.load(tmp_path / "out")
    np.testing.assert_array_equal(loaded.tensors, result.representative_set.tensors)
    assert loaded.paths == result.representative_set.paths
    assert loaded.manifest["calibration"]["shape"] == [6, 1, 8, 8]


@pytest.mark.parametrize("kwargs, needle", [
    ({"size": 0}, "size"), ({"balance": "equal"}, "balance"), ({"strategy": "herding"}, "strategy"),
    ({"batch_size": 0}, "batch_size"),
])
def test_invalid_parameters_are_usage_errors(tmp_path, kwargs, needle) -> None:
    with pytest.raises(UsageError, match=needle):
        repcurate.build(tmp_path, **kwargs)
