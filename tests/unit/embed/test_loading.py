"""Resolving --model / --preprocess into an embedder."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.embed.loading import build_embedder
from repcurate.errors import InputError, UsageError
from repcurate.frameworks.loading import load_model

MODEL_FILE = """
import numpy as np
import torch.nn as nn

def make():
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2))

def broken():
    raise RuntimeError("weights missing")

not_a_model = 42

def pre(image):
    return np.asarray(image.convert("L").resize((4, 3)), dtype=np.float32)
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "user_model.py"
    path.write_text(MODEL_FILE)
    return path


def test_factory_spec_and_preprocess(model_file) -> None:
    embedder, set_pre = build_embedder(f"{model_file}:make", layer=None, preprocess=f"{model_file}:pre")
    assert embedder.framework == "torch" and embedder.layer == "3"
    assert embedder.preprocessor is set_pre
    assert embedder.embed_batch(np.zeros((2, 3, 4), np.float32)).shape == (2, 5)


def test_user_model_requires_preprocess(model_file) -> None:
    with pytest.raises(UsageError, match="needs --preprocess"):
        build_embedder(f"{model_file}:make", layer=None, preprocess=None)


def test_bad_model_references(model_file) -> None:
    with pytest.raises(UsageError):
        load_model("resnet")
    with pytest.raises(InputError, match="weights missing"):
        load_model(f"{model_file}:broken")
    with pytest.raises(InputError, match="int"):
        load_model(f"{model_file}:not_a_model")
    with pytest.raises(InputError, match="not found"):
        load_model(str(model_file.parent / "absent.keras"))


def test_default_model_keeps_its_own_preprocessing_for_embeddings(model_file) -> None:
    embedder, set_pre = build_embedder(None, layer=None, preprocess=f"{model_file}:pre")
    assert embedder.model_spec == "efficientnet-lite0"
    assert embedder.preprocessor.spec == "efficientnet-lite0:preprocess"
    assert set_pre.spec == f"{model_file}:pre"
