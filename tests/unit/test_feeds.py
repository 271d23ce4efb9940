"""The toolchain feeds of a set: same samples, same order, every pass; shapes each toolchain expects."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from repcurate.errors import MissingDependencyError, UsageError
from repcurate.repset import RepresentativeSet


def _set(n: int = 7) -> RepresentativeSet:
    tensors = np.arange(n * 2 * 3 * 4, dtype=np.float32).reshape(n, 2, 3, 4)
    return RepresentativeSet(tensors=tensors, manifest={"samples": [{"path": f"{i}.png"} for i in range(n)]})


def test_numpy_batches_keep_set_order() -> None:
    rs = _set()
    batches = rs.numpy(batch_size=3)
    assert [b.shape[0] for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), rs.tensors)
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
    with pytest.raises(UsageError, match="batch_size"):
        rs.numpy(batch_size=0)


def test_torch_dataset_and_loader_do_not_shuffle() -> None:
    rs = _set()
    assert len(rs.torch_dataset()) == 7
    for _ in range(2):  # every pass yields the same batches
        xs = [batch[0].numpy() for batch in rs.torch_loader(batch_size=4)]
        assert [x.shape for x in xs] == [(4, 2, 3, 4), (3, 2, 3, 4)]
        np.testing.assert_array_equal(np.concatenate(xs), rs.tensors)


def test_ort_reader_feeds_named_batches_and_rewinds() -> None:
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader

    rs = _set()
    reader = rs.ort_reader("input.1", batch_size=2)
    assert isinstance(reader, CalibrationDataReader) and len(reader) == 4
    fed = []
    while (item := reader.get_next()) is not None:
        assert list(item) == ["input.1"]
        fed.append(item["input.1"])
    np.testing.assert_array_equal(np.concatenate(fed), rs.tensors)
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["input.1"], rs.tensors[:2])
    with pytest.raises(UsageError, match="input name"):
        rs.ort_reader("")


def test_tflite_generator_yields_single_samples_channels_last_on_request() -> None:
    rs = _set(3)
    as_is = [item[0] for item in rs.tflite_representative_dataset()()]
    assert [x.shape for x in as_is] == [(1, 2, 3, 4)] * 3
    transposed = [item[0] for item in rs.tflite_representative_dataset(from_channels_first=True)()]
    assert [x.shape for x in transposed] == [(1, 3, 4, 2)] * 3
    np.testing.assert_array_equal(transposed[1][0], rs.tensors[1].transpose(1, 2, 0))
    gen = rs.tflite_representative_dataset()
    assert [x[0].tolist() for x in gen()] == [x[0].tolist() for x in gen()]  # a fresh, identical pass each call


def test_nncf_dataset_yields_batches_of_one_through_the_transform() -> None:
    pytest.importorskip("nncf")
    rs = _set(3)
    items = list(rs.nncf_dataset().get_inference_data())
    assert [x.shape for x in items] == [(1, 2, 3, 4)] * 3
    np.testing.assert_array_equal(np.concatenate(items), rs.tensors)
    named = list(rs.nncf_dataset(transform=lambda x: {"pixels": x}).get_inference_data())
    assert all(list(item) == ["pixels"] for item in named)
    with pytest.raises(UsageError, match="transform"):
        rs.nncf_dataset(transform="pixels")


def test_nncf_dataset_without_nncf_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "nncf", None)  # what `import nncf` meets when it is not installed
    with pytest.raises(MissingDependencyError, match=r'pip install "repcurate\[nncf\]"') as caught:
        _set().nncf_dataset()
    assert caught.value.exit_code == 4


def test_nncf_dataset_switches_nncf_telemetry_off_outside_pytest(tmp_path) -> None:
    """Outside pytest (NNCF stubs its telemetry itself under pytest) with no NNCF_CI/NNCF_DEV/CI set, NNCF's
    telemetry object must be its no-op stub once the adapter has imported NNCF."""
    pytest.importorskip("nncf")
    code = ("import numpy as np, os\n"
            "from repcurate.feeds import nncf_dataset\n"
            "nncf_dataset(np.zeros((2, 3), np.float32))\n"
            "import nncf.telemetry.wrapper as wrapper\n"
            "print(isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub), type(wrapper.telemetry).__name__, os.environ['NNCF_CI'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NNCF_CI", "NNCF_DEV", "CI")}
    env["HOME"] = str(tmp_path)  # openvino_telemetry keeps its client-id files under HOME
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "MagicMock", "1"]  # NNCF's stub is a MagicMock (its real one: NNCFTelemetry)
