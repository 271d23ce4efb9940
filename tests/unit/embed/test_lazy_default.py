"""The bundled model is built only when something has to be embedded (speed benchmark, issue 5)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repcurate.embed.base import ModelEmbedder
from repcurate.embed.loading import LazyBundledEmbedder, build_embedder
from repcurate.frameworks.bundled import bundled_model_fingerprint, load_efficientnet_lite0
from repcurate.frameworks.loading import default_preprocessor
from repcurate.frameworks.registry import get
from repcurate.frameworks.torch import default_head_layer


def test_default_model_without_layer_is_lazy_and_fingerprinted_from_its_files() -> None:
    embedder, set_pre = build_embedder(None, layer=None, preprocess=None)
    assert isinstance(embedder, LazyBundledEmbedder) and embedder._loaded is None
    assert embedder.fingerprint == bundled_model_fingerprint() == build_embedder("efficientnet-lite0", layer=None,
                                                                                preprocess=None)[0].fingerprint
    assert len(embedder.fingerprint) == 32 and int(embedder.fingerprint, 16) >= 0
    assert (embedder.framework, embedder.model_spec) == ("torch", "efficientnet-lite0")
    assert embedder.preprocessor is set_pre and set_pre.spec == "efficientnet-lite0:preprocess"


@pytest.mark.slow
def test_lazy_embedder_matches_the_eager_one() -> None:
    lazy, _ = build_embedder(None, layer=None, preprocess=None)
    model = load_efficientnet_lite0()
    assert lazy.layer == default_head_layer(model)
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, size=(2, 3, 224, 224)).astype(np.float32)
    eager = ModelEmbedder(get("torch"), model, spec="efficientnet-lite0", preprocessor=default_preprocessor())
    np.testing.assert_array_equal(lazy.embed_batch(batch), eager.embed_batch(batch))
    assert isinstance(lazy.loaded, ModelEmbedder) and lazy.loaded is lazy.loaded


def test_explicit_layer_loads_the_model_at_once() -> None:
    embedder, _ = build_embedder(None, layer="_conv_head", preprocess=None)
    assert isinstance(embedder, ModelEmbedder) and embedder.layer == "_conv_head"


@pytest.mark.slow
def test_rebuild_from_a_full_cache_never_imports_torch(tmp_path: Path) -> None:
    from repcurate.commands.build import build
    from repcurate.example_data import write_digits_folder

    write_digits_folder(tmp_path / "train", per_class=dict.fromkeys(range(10), 3))
    first = build(tmp_path / "train", tmp_path / "cold", cache_dir=tmp_path / "cache", size=12, progress=False)
    assert first.embedded == 30
    script = (
        "import sys\n"
        "from repcurate.commands.build import build\n"
        f"r = build({str(tmp_path / 'train')!r}, {str(tmp_path / 'warm')!r}, cache_dir={str(tmp_path / 'cache')!r}, "
        "size=12, progress=False)\n"
        "assert r.embedded == 0 and r.cache_hits == 30, (r.embedded, r.cache_hits)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "warm" / "manifest.json").read_bytes() == (tmp_path / "cold" / "manifest.json").read_bytes()
    assert (tmp_path / "warm" / "calibration.npz").read_bytes() == (tmp_path / "cold" / "calibration.npz").read_bytes()
