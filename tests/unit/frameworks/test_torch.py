"""The torch framework's feature capture (through ModelEmbedder) and the bundled default model, on real images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from repcurate.data.preprocess import make_preprocessor
from repcurate.embed.base import ModelEmbedder
from repcurate.errors import InputError, UsageError
from repcurate.frameworks.base import pool_features
from repcurate.frameworks.bundled import efficientnet_lite0_preprocess
from repcurate.frameworks.registry import get
from repcurate.frameworks.torch import default_head_layer, torch_model_fingerprint


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.aux = nn.Linear(4, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.body(x)).flatten(1))


def _pre():
    return make_preprocessor(lambda im: np.asarray(im.resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255.0,
                             name="test:pre")


def _batch() -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images[:6] / 16.0
    return np.repeat(images[:, None], 3, axis=1).astype(np.float32)


def test_default_layer_is_the_last_linear_and_captures_its_input() -> None:
    torch.manual_seed(0)
    model = TwoHeads().eval()
    assert default_head_layer(model) == "classifier"
    embedder = ModelEmbedder(get("torch"), model, spec="two", preprocessor=_pre())
    batch = _batch()
    features = embedder.embed_batch(batch)
    with torch.no_grad():
        expected = model.pool(model.body(torch.from_numpy(batch))).flatten(1).numpy()
    assert features.shape == (6, 4)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_named_layer_output_is_average_pooled() -> None:
    torch.manual_seed(0)
    model = TwoHeads().eval()
    embedder = ModelEmbedder(get("torch"), model, spec="two", preprocessor=_pre(), layer="body.0")
    batch = _batch()
    with torch.no_grad():
        expected = model.body[0](torch.from_numpy(batch)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(embedder.embed_batch(batch), expected, rtol=1e-5, atol=1e-6)


def test_unknown_layer_and_missing_head_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not found"):
        ModelEmbedder(get("torch"), TwoHeads(), spec="two", preprocessor=_pre(), layer="nope")
    with pytest.raises(UsageError, match="--layer"):
        ModelEmbedder(get("torch"), nn.Sequential(nn.Conv2d(3, 2, 1)), spec="conv", preprocessor=_pre())


def test_wrong_input_shape_is_an_input_error_naming_the_shape() -> None:
    embedder = ModelEmbedder(get("torch"), TwoHeads(), spec="two", preprocessor=_pre())
    with pytest.raises(InputError, match=r"\(2, 1, 8, 8\)"):
        embedder.embed_batch(np.zeros((2, 1, 8, 8), np.float32))


def test_fingerprint_follows_weights_and_layer() -> None:
    torch.manual_seed(0)
    model = TwoHeads()
    base = torch_model_fingerprint(model, "in:classifier")
    assert base == torch_model_fingerprint(model, "in:classifier")
    assert base != torch_model_fingerprint(model, "out:classifier")
    with torch.no_grad():
        model.classifier.bias[0] += 1e-3
    assert base != torch_model_fingerprint(model, "in:classifier")


def test_pool_features_layouts() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(pool_features(x, channels_last=False), x.mean(axis=(2, 3)))
    np.testing.assert_allclose(pool_features(x, channels_last=True), x.mean(axis=(1, 2)))
    assert pool_features(np.ones((2, 7), np.float32), channels_last=False).shape == (2, 7)


def test_bundled_default_model_recognises_a_cat() -> None:
    """EfficientNet-Lite0 from site-packages, its preprocessing, real photo: a cat class."""
    import skimage.data
    from PIL import Image

    from repcurate.frameworks.bundled import load_efficientnet_lite0

    model = load_efficientnet_lite0()
    sample = efficientnet_lite0_preprocess(Image.fromarray(skimage.data.chelsea()))
    assert sample.shape == (3, 224, 224) and sample.dtype == np.float32
    assert -1.0 <= sample.min() and sample.max() <= 1.0
    with torch.no_grad():
        logits = model(torch.from_numpy(sample[None]))
    assert int(logits.argmax()) in range(281, 286)  # ImageNet cats (282 tiger cat, 285 Egyptian cat)
    embedder = ModelEmbedder(get("torch"), model, spec="efficientnet-lite0", preprocessor=make_preprocessor(efficientnet_lite0_preprocess))
    assert embedder.layer == "_fc"
    assert embedder.embed_batch(sample[None]).shape == (1, 1280)


def test_outputs_of_large_inputs_run_in_bounded_batches():
    """224×224 RGB inputs are scored 27 rows at a time (not 256: a quantized EfficientNet-Lite0 held 23 GB), and
    the batched outputs equal one pass over all rows."""
    model = TwoHeads().eval()
    rows: list[int] = []
    model.body.register_forward_hook(lambda _m, inputs, _out: rows.append(int(inputs[0].shape[0])))
    x = np.random.default_rng(0).standard_normal((60, 3, 224, 224)).astype(np.float32)
    outputs = get("torch").outputs(model, x)
    assert rows == [27, 27, 6]
    with torch.no_grad():
        whole = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(outputs[0], whole, rtol=1e-5, atol=1e-6)
