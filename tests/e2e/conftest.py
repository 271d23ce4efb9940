"""Fixtures shared by the end-to-end tests."""
from __future__ import annotations

import pytest

from tests.e2e.model_files import write_digits_project, write_model


@pytest.fixture(scope="session")
def keras_project(tmp_path_factory):
    """A Keras digits CNN trained once per session, a 32-image set built with it, and held-out eval images."""
    pytest.importorskip("tensorflow")
    work = tmp_path_factory.mktemp("confirm-keras")
    model, preprocess = write_model(work, "keras")
    write_digits_project(work, model, preprocess, train_per_class=60, eval_per_class=30, set_size=32)
    return work, model, preprocess


@pytest.fixture(scope="session")
def torch_project(tmp_path_factory):
    """The PyTorch digits CNN trained once per session, a 64-image set built with it, and held-out eval images."""
    work = tmp_path_factory.mktemp("toolchains-torch")
    model, preprocess = write_model(work, "torch")
    write_digits_project(work, model, preprocess, train_per_class=60, eval_per_class=30, set_size=64)
    return work, model, preprocess


@pytest.fixture(scope="session")
def digits_onnx(torch_project):
    """The torch project's CNN exported to ONNX (input ``pixels``, dynamic batch; TorchScript exporter)."""
    pytest.importorskip("onnx")
    import torch

    import repcurate
    from repcurate.spec import load_object

    work, model_spec, _ = torch_project
    path = work / "digits.onnx"
    sample = torch.from_numpy(repcurate.load(work / "repset").tensors[:1])
    torch.onnx.export(load_object(model_spec)(), sample, str(path), input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    return path
