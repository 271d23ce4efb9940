"""Fixtures shared by the end-to-end tests."""
from __future__ import annotations

import pytest

import repcurate
from repcurate.example_data import write_digits_folder
from tests.e2e.model_files import write_model


@pytest.fixture(scope="session")
def keras_project(tmp_path_factory):
    """A Keras digits CNN trained once per session, a 32-image set built with it, and held-out eval images."""
    pytest.importorskip("tensorflow")
    work = tmp_path_factory.mktemp("confirm-keras")
    write_digits_folder(work / "train", per_class={d: 60 for d in range(10)})
    write_digits_folder(work / "eval", per_class={d: 30 for d in range(10)}, offset=60)
    model, preprocess = write_model(work, "keras")
    repcurate.build(work / "train", work / "repset", size=32, model=model, preprocess=preprocess,
                    use_cache=False, progress=False)
    return work, model, preprocess
