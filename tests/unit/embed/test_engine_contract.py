"""What every registered embedding engine must do (``build --engine``): for the same files, the same embeddings as
the embedder run directly (within float tolerance), the same skip reasons, each content once — on real files, a
real model named by a ``file.py`` spec, and (for ``ray``) a real local Ray cluster."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.data.scan import scan_directory
from repcurate.embed import engines
from repcurate.embed.engine import EngineSettings
from repcurate.embed.loading import build_embedder
from repcurate.embed.pipeline import embed_records, load_tensors_skipping
from repcurate.embed.samples import pad_batch
from tests.unit.embed.engine_testdata import write_engine_project

NAMES = list(engines.REGISTRY)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    train, model, preprocess = write_engine_project(tmp_path_factory.mktemp("engines"))
    scanned = scan_directory(train)
    embedder, _ = build_embedder(model, layer=None, preprocess=preprocess, device="cpu")
    tensors, failures = load_tensors_skipping(scanned.records, scanned.root, embedder.preprocessor)
    assert tensors is not None
    reference = np.vstack([embedder.embed_batch(pad_batch(tensors[i:i + 4], 4))[: len(tensors[i:i + 4])]
                           for i in range(0, len(tensors), 4)])
    return scanned, embedder, reference, [(f.path, f.reason) for f in failures]


@pytest.fixture(params=NAMES)
def engine(request):
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return engines.create(request.param, EngineSettings(actors=1))


def test_every_engine_is_registered_under_its_own_name():
    assert NAMES[:2] == ["local", "ray"]
    assert all(engines.create(name).name == name for name in NAMES)


def test_same_files_give_the_same_embeddings_and_skip_reasons(project, engine, tmp_path):
    scanned, embedder, reference, expected_skips = project
    run = embed_records(scanned.records, scanned.root, embedder, cache_dir=tmp_path / "cache", batch_size=4,
                        engine=engine)
    assert [r.path for r in run.records] == [r.path for r in scanned.records if r.path != "1/broken.png"]
    np.testing.assert_allclose(run.vectors, reference, rtol=1e-5, atol=1e-6)
    assert [(s.path, s.reason) for s in run.skipped] == expected_skips == [("1/broken.png", "truncated")]
    assert run.computed == len(reference) and run.cache_hits == 0
    again = embed_records(scanned.records, scanned.root, embedder, cache_dir=tmp_path / "cache", batch_size=4,
                          engine=engine)  # cache hits never reach the engine
    assert again.computed == 0 and again.cache_hits == len(reference)
    np.testing.assert_array_equal(again.vectors, run.vectors)
