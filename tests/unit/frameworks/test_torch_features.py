"""Feature layers of PyTorch models without a classifier head, found in the fx graph, and several --layer names."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn as nn

from repcurate.data.preprocess import make_preprocessor
from repcurate.embed.base import ModelEmbedder
from repcurate.errors import UsageError
from repcurate.frameworks.base import layer_names
from repcurate.frameworks.registry import get


class TwoHeadDetector(nn.Module):
    """Conv backbone, a box head and a class head, no nn.Linear, tuple output (issue 15's model)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                      nn.ReLU())
        self.box_head = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 4, 1))
        self.cls_head = nn.Conv2d(16, 3, 1)

    def forward(self, x):
        f = self.backbone(x)
        return self.box_head(f), self.cls_head(f)


class SplitAtInput(nn.Module):
    """Two branches from the input, each with its own head, dict output: no layer feeds every head."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(3, 4, 3, padding=1)
        self.right = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.left_head = nn.Conv2d(4, 2, 1)
        self.right_head = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        return {"small": self.left_head(torch.relu(self.left(x))), "large": self.right_head(torch.relu(self.right(x)))}


class ResidualNeck(nn.Module):
    """The node every head reads is a functional add, not a module."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Conv2d(8, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 2, 1)
        self.b = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        s = self.stem(x)
        f = s + self.branch(s)
        return [self.a(f), self.b(f)]


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = x * 2
        return self.head(self.conv(x))


def _pre():
    return make_preprocessor(lambda im: np.asarray(im.resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255.0,
                             name="test:pre")


def _batch() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, 3, 8, 8)).astype(np.float32)


def _embedder(model: nn.Module, layer=None) -> ModelEmbedder:
    torch.manual_seed(0)
    return ModelEmbedder(get("torch"), model.eval(), spec="m.py:make", preprocessor=_pre(), layer=layer)


def test_a_headless_detector_embeds_with_the_backbone_output_that_feeds_both_heads(caplog):
    torch.manual_seed(0)
    model = TwoHeadDetector().eval()
    with caplog.at_level(logging.INFO, logger="repcurate"):
        embedder = ModelEmbedder(get("torch"), model, spec="det.py:make", preprocessor=_pre())
    assert embedder.layer == "backbone.3"
    assert "det.py:make has no nn.Linear head: embedding with backbone.3 (the last node every output depends on)" in caplog.text
    batch = _batch()
    with torch.no_grad():
        expected = model.backbone(torch.from_numpy(batch)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(embedder.embed_batch(batch), expected, rtol=1e-5, atol=1e-6)


def test_heads_branching_at_the_input_pool_and_concatenate_the_maps_feeding_each_head():
    torch.manual_seed(0)
    model = SplitAtInput().eval()
    embedder = _embedder(model)
    assert embedder.layer == "relu,relu_1"  # the functional relus feeding left_head and right_head (fx node names)
    batch = torch.from_numpy(_batch())
    with torch.no_grad():
        expected = np.concatenate([torch.relu(model.left(batch)).mean(dim=(2, 3)).numpy(),
                                   torch.relu(model.right(batch)).mean(dim=(2, 3)).numpy()], axis=1)
    np.testing.assert_allclose(embedder.embed_batch(batch.numpy()), expected, rtol=1e-5, atol=1e-6)


def test_a_functional_node_is_captured_by_its_fx_name():
    torch.manual_seed(0)
    model = ResidualNeck().eval()
    embedder = _embedder(model)
    assert embedder.layer == "add"
    batch = torch.from_numpy(_batch())
    with torch.no_grad():
        s = model.stem(batch)
        expected = (s + model.branch(s)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(embedder.embed_batch(batch.numpy()), expected, rtol=1e-5, atol=1e-6)


def test_several_layers_are_pooled_and_concatenated_in_the_order_given():
    torch.manual_seed(0)
    model = TwoHeadDetector().eval()
    assert layer_names(["cls_head, backbone.1", "cls_head"]) == ["cls_head", "backbone.1"]
    embedder = _embedder(model, layer=["cls_head, backbone.1"])
    assert embedder.layer == "cls_head,backbone.1"
    batch = torch.from_numpy(_batch())
    with torch.no_grad():
        f = model.backbone(batch)
        expected = np.concatenate([model.cls_head(f).mean(dim=(2, 3)).numpy(),
                                   model.backbone[:2](batch).mean(dim=(2, 3)).numpy()], axis=1)
    np.testing.assert_allclose(embedder.embed_batch(batch.numpy()), expected, rtol=1e-5, atol=1e-6)
    mixed = _embedder(ResidualNeck(), layer="stem,add")  # a module and an fx node together
    assert mixed.embed_batch(_batch()).shape == (5, 16)


def test_models_the_rule_cannot_read_ask_for_layer():
    with pytest.raises(UsageError, match=r"torch\.fx cannot trace.*--layer"):
        _embedder(Untraceable())
    assert _embedder(Untraceable(), layer="conv").embed_batch(_batch()).shape == (5, 4)
    with pytest.raises(UsageError, match="'nope' not found"):
        _embedder(Untraceable(), layer="nope")
    with pytest.raises(UsageError, match="'nope' not found"):
        _embedder(ResidualNeck(), layer="stem,nope")
