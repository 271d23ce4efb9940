"""``--device``: one resolver checks the value up front; models, batches and MCT end up on the same device."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from repcurate.frameworks.device import concrete_device, resolve_device, tf_device_name
from repcurate.frameworks.registry import get
from repcurate.options import OptionError

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (None, "auto"), ("cpu", "cpu"), (" CPU ", "cpu")])
def test_valid_values_are_canonical(value, expected):
    assert resolve_device(value) == expected


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "cuda:-1", "", "tpu:0", 3])
def test_a_malformed_device_is_a_usage_error_naming_the_choices(value):
    with pytest.raises(OptionError, match=r"--device .*fix: pass --device auto, cpu, cuda or cuda:N"):
        resolve_device(value)


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_a_usage_error_with_the_fix(value):
    with pytest.raises(OptionError, match=r"no CUDA device.*fix: pass --device cpu or --device auto"):
        resolve_device(value)


def test_auto_is_decided_where_a_model_runs():
    assert concrete_device("auto") == ("cuda:0" if HAS_CUDA else "cpu")
    assert concrete_device("cpu") == "cpu"
    assert tf_device_name("cpu") == "/CPU:0" and tf_device_name("cuda:1") == "/GPU:1"


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5)).eval()


def test_torch_capture_and_outputs_run_on_the_model_device():
    torch_fw = get("torch")
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    model = torch_fw.place(_model(), "auto")
    assert str(next(model.parameters()).device) == concrete_device("auto")
    features = torch_fw.capture(model, layer=None, spec="m", device="auto")(x)
    assert features.dtype == np.float32 and features.shape == (4, 108)
    cpu_model = _model()
    np.testing.assert_allclose(features, torch_fw.capture(cpu_model, layer=None, spec="m", device="cpu")(x),
                               rtol=1e-4, atol=1e-5)
    outputs = torch_fw.outputs(model, x)  # the batches follow the model, wherever it is
    np.testing.assert_allclose(outputs[0], torch_fw.outputs(cpu_model, x)[0], rtol=1e-4, atol=1e-5)


def test_mct_is_told_the_same_device():
    from model_compression_toolkit.core.pytorch.pytorch_device_config import get_working_device

    get("torch").mct.set_device("cpu")
    assert get_working_device() == torch.device("cpu")
    get("torch").mct.set_device("auto")
    assert get_working_device() == torch.device(concrete_device("auto"))
    get("torch").mct.set_device("cpu")


def test_keras_cpu_hides_the_gpus_from_tensorflow():
    tf = pytest.importorskip("tensorflow")
    from repcurate.frameworks.device import restrict_tensorflow

    restrict_tensorflow("cpu")
    assert tf.config.get_visible_devices("GPU") == []
    if not tf.config.list_physical_devices("GPU"):
        from repcurate.errors import UsageError

        with pytest.raises(UsageError, match=r"no CUDA device|TensorFlow sees 0 GPU"):
            restrict_tensorflow("cuda:0")  # (torch may see a GPU that a tensorflow-cpu build cannot use)


def test_keras_capture_gives_the_same_features_on_cpu_and_auto():
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((8, 8, 1)), tf.keras.layers.Conv2D(3, 3, activation="relu"),
                                 tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(4)])
    keras_fw = get("keras")
    x = np.random.default_rng(1).random((5, 8, 8, 1), dtype=np.float32)
    on_cpu = keras_fw.capture(model, layer=None, spec="k", device="cpu")(x)
    np.testing.assert_array_equal(on_cpu, keras_fw.capture(keras_fw.place(model, "auto"), layer=None, spec="k",
                                                           device="auto")(x))
    assert on_cpu.shape == (5, 3)
