"""The local engine loads a lazy embedder's model in the background while the first batches decode, gives the same
vectors as an embedder loaded up front, and surfaces a load error from ``run``."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from repcurate.data.preprocess import make_preprocessor
from repcurate.data.scan import scan_directory
from repcurate.embed.engine import EngineJob
from repcurate.embed.loading import build_embedder
from repcurate.embed.local_engine import LOADING_AHEAD_BATCHES, LocalEngine
from repcurate.embed.samples import PREFETCH_BATCHES
from repcurate.errors import MissingDependencyError
from tests.unit.embed.engine_testdata import write_engine_project


class SlowLoadingEmbedder:
    """A real torch embedder (the engine tests' tiny model) behind a lazy load that waits, in ``prepare``, until the
    decoding threads have preprocessed ``wait_for`` files: it only finishes if decoding goes on while it loads."""

    def __init__(self, model: str, preprocess: str, wait_for: int, fail: bool = False) -> None:
        self._model, self._preprocess, self._fail = model, preprocess, fail
        self.decoded = 0
        self.enough = threading.Event()
        self.wait_for = wait_for
        self.load_thread: str | None = None
        inner = make_preprocessor(preprocess)

        def counting(image):
            self.decoded += 1
            if self.decoded >= self.wait_for:
                self.enough.set()
            return inner.fn(image)

        self.preprocessor = make_preprocessor(counting, name="counting")
        self._loaded = None

    def prepare(self) -> None:
        self.load_thread = threading.current_thread().name
        assert self.enough.wait(timeout=60), "nothing was decoded while the model loaded"
        if self._fail:
            raise MissingDependencyError("torch", purpose="a test model")
        self._loaded, _ = build_embedder(self._model, layer=None, preprocess=self._preprocess, device="cpu")

    def embed_batch(self, batch):
        assert self._loaded is not None, "embed_batch before the model finished loading"
        return self._loaded.embed_batch(batch)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    train, model, preprocess = write_engine_project(tmp_path_factory.mktemp("local"), per_class=12)
    return scan_directory(train), model, preprocess


def _vectors(chunks):
    return {r.fingerprint: v for chunk in chunks for r, v in zip(chunk.records, chunk.vectors, strict=True)}


def test_the_model_loads_in_the_background_while_batches_decode(project):
    scanned, model, preprocess = project
    batch = 4
    # more than the engine's usual look-ahead: decoding must go on into the batches kept while the model loads
    wait_for = batch * (PREFETCH_BATCHES + 2) + 1
    assert wait_for <= batch * LOADING_AHEAD_BATCHES
    lazy = SlowLoadingEmbedder(model, preprocess, wait_for=wait_for)
    chunks = list(LocalEngine().run(scanned.records, EngineJob(scanned.root, lazy, batch_size=batch)))
    assert lazy.load_thread is not None and lazy.load_thread != threading.current_thread().name
    eager, _ = build_embedder(model, layer=None, preprocess=preprocess, device="cpu")
    expected = _vectors(LocalEngine().run(scanned.records, EngineJob(scanned.root, eager, batch_size=batch)))
    got = _vectors(chunks)
    assert got.keys() == expected.keys() and len(got) == 36
    for key, vector in expected.items():
        np.testing.assert_array_equal(got[key], vector)
    assert [r.path for c in chunks for r, _ in c.failures] == ["1/broken.png"]
    order = [r.path for c in chunks for r in c.records]
    assert order == [r.path for r in scanned.records if r.path != "1/broken.png"]  # record order kept


def test_a_model_that_fails_to_load_ends_the_run_with_its_error(project):
    scanned, model, preprocess = project
    lazy = SlowLoadingEmbedder(model, preprocess, wait_for=1, fail=True)
    with pytest.raises(MissingDependencyError):
        list(LocalEngine().run(scanned.records, EngineJob(scanned.root, lazy, batch_size=4)))
