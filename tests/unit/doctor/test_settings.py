"""MCTSettings: the recommended configuration's Python runs in real MCT and matches its JSON."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.quantize.mct import MCTSettings


def tiny_model():
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


@pytest.mark.parametrize("settings", [
    MCTSettings(),
    MCTSettings(weights_bits=4).with_quantization(z_threshold=10.0, weights_bias_correction=False),
    MCTSettings(activation_16bit=("1",)).with_quantization(concat_threshold_update=True),
])
def test_generated_python_quantizes_with_mct(settings):
    import torch

    data = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    namespace = {"model": tiny_model(), "representative_data_gen": lambda: iter([[data]])}
    exec(settings.python("torch"), namespace)
    quantized = namespace["quantized_model"]
    with torch.no_grad():
        assert quantized(torch.from_numpy(data)).shape == (8, 3)
    core = namespace["core_config"]
    for name, value in settings.quantization:
        assert getattr(core.quantization_config, name) == value
    assert settings.to_dict()["quantization_config"] == dict(settings.quantization)


def test_generated_python_sets_the_head_fix_16_bit_activations_on_tpc_4():
    import torch
    import torch.nn as nn

    class Scaled(nn.Module):  # a convolution, then arithmetic with a constant (as a box decoding's × stride)
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.register_buffer("scale", torch.full((1, 4, 1, 1), 8.0))

        def forward(self, x):
            return self.conv(x) * self.scale

    settings = MCTSettings(manual_16bit=("mul",), tpc="imx500:4.0").with_quantization(concat_threshold_update=True)
    data = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    namespace = {"model": Scaled().eval(), "representative_data_gen": lambda: iter([[data]])}
    exec(settings.python("torch"), namespace)
    bits = {name[: -len("_activation_holder_quantizer")]: m.activation_holder_quantizer.num_bits
            for name, m in namespace["quantized_model"].named_modules() if name.endswith("_activation_holder_quantizer")}
    assert bits["mul"] == 16 and bits["conv"] == 8
    assert settings.to_dict()["activation_16bit_nodes"] == ["mul"] and settings.to_dict()["tpc"] == "imx500:4.0"
    assert "TPC imx500:4.0" in settings.label()


def test_with_quantization_merges_and_sorts():
    first = MCTSettings().with_quantization(z_threshold=5.0)
    second = first.with_quantization(weights_bias_correction=False, z_threshold=10.0)
    assert second.quantization == (("weights_bias_correction", False), ("z_threshold", 10.0))
    assert first.quantization == (("z_threshold", 5.0),)
    assert "z_threshold=10.0" in second.label() and "8-bit weights" in second.label()


@pytest.mark.parametrize("framework, expected", [
    ("torch", ["import torch.nn as nn", "[NodeTypeFilter(nn.Conv2d), NodeTypeFilter(nn.Linear)], [4, 4], ['weight', 'weight']",
               "mct.ptq.pytorch_post_training_quantization(model"]),
    ("keras", ["from tensorflow.keras import layers",
               "[NodeTypeFilter(layers.Conv2D), NodeTypeFilter(layers.Dense)], [4, 4], ['kernel', 'kernel']",
               "mct.ptq.keras_post_training_quantization(model"]),
])
def test_generated_python_names_come_from_the_frameworks_mct_glue(framework, expected):
    code = MCTSettings(weights_bits=4).python(framework)
    assert all(line in code for line in expected)
    assert "gptq.get_keras_gptq_config" in MCTSettings(gptq_epochs=2).python("keras")
