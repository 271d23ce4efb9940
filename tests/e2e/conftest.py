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
