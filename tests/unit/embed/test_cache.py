"""The SQLite embedding cache."""
from __future__ import annotations

import numpy as np

from repcurate.embed.cache import EmbeddingCache, default_cache_dir


def test_roundtrip_and_namespaces(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path, "m" * 32, "p" * 32)
    vectors = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    cache.put_many([("a", vectors[0]), ("b", vectors[1])])
    found = cache.get_many(["a", "b", "c", "a"])
    assert sorted(found) == ["a", "b"]
    np.testing.assert_array_equal(found["a"], vectors[0])
    cache.close()
    reopened = EmbeddingCache(tmp_path, "m" * 32, "p" * 32)
    np.testing.assert_array_equal(reopened.get_many(["b"])["b"], vectors[1])
    other_model = EmbeddingCache(tmp_path, "n" * 32, "p" * 32)
    assert other_model.get_many(["a", "b"]) == {}
    assert other_model.path != reopened.path


def test_many_keys_beyond_one_query(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path, "m" * 32, "p" * 32)
    cache.put_many([(f"k{i}", np.full(2, i, np.float32)) for i in range(1200)])
    found = cache.get_many([f"k{i}" for i in range(1200)])
    assert len(found) == 1200 and found["k999"][0] == 999


def test_default_cache_dir_honours_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REPCURATE_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("REPCURATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "repcurate"
