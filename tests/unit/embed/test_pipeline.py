"""Embedding pipeline: threads, cache reuse, skipped files, shape checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from repcurate.data.preprocess import make_preprocessor
from repcurate.data.scan import scan_directory
from repcurate.embed.base import ModelEmbedder
from repcurate.embed.pipeline import embed_records, load_tensors
from repcurate.errors import InputError
from repcurate.example_data import write_digits_folder
from repcurate.frameworks.registry import get


def _embedder(preprocess=None) -> ModelEmbedder:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    pre = make_preprocessor(preprocess or (lambda im: np.asarray(im.convert("L").resize((8, 8)), np.float32)[None] / 255),
                            name="grey8")
    return ModelEmbedder(get("torch"), model.eval(), spec="tiny", preprocessor=pre)


def test_cache_makes_the_second_run_free_and_identical(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={0: 5, 1: 5})
    (tmp_path / "train" / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nrubbish")
    scanned = scan_directory(tmp_path / "train")
    embedder = _embedder()
    first = embed_records(scanned.records, scanned.root, embedder, cache_dir=tmp_path / "cache", batch_size=3)
    assert first.computed == 10 and first.cache_hits == 0
    assert [s.path for s in first.skipped] == ["1/broken.png"]
    assert first.vectors.shape == (10, 4)
    second = embed_records(scanned.records, scanned.root, embedder, cache_dir=tmp_path / "cache", batch_size=4)
    assert second.computed == 0 and second.cache_hits == 10
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert [r.path for r in second.records] == [r.path for r in first.records]


def test_batching_does_not_change_results_beyond_float_noise(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={2: 7})
    scanned = scan_directory(tmp_path / "train")
    embedder = _embedder()
    a = embed_records(scanned.records, scanned.root, embedder, cache_dir=None, batch_size=1, workers=1)
    b = embed_records(scanned.records, scanned.root, embedder, cache_dir=None, batch_size=7, workers=3)
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-5, atol=1e-6)


def test_preprocessing_with_varying_shapes_is_an_input_error(tmp_path) -> None:
    folder = tmp_path / "train" / "a"
    folder.mkdir(parents=True)
    Image.new("RGB", (10, 10), "white").save(folder / "small.png")
    Image.new("RGB", (12, 10), "black").save(folder / "wide.png")
    scanned = scan_directory(tmp_path / "train")
    pre = make_preprocessor(lambda im: np.asarray(im.convert("L"), np.float32)[None], name="no-resize")
    with pytest.raises(InputError, match="fix: resize"):
        load_tensors(scanned.records, scanned.root, pre)


def test_a_file_changed_after_the_scan_is_skipped_not_embedded_under_the_old_fingerprint(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={3: 4})
    scanned = scan_directory(tmp_path / "train")
    first, other = scanned.records[0], scanned.records[1]
    (scanned.root / first.path).write_bytes((scanned.root / other.path).read_bytes())  # swapped after the scan
    run = embed_records(scanned.records, scanned.root, _embedder(), cache_dir=tmp_path / "cache", batch_size=2)
    assert [(s.path, s.reason) for s in run.skipped] == [(first.path, "content_changed")]
    assert first.path not in [r.path for r in run.records]
    again = embed_records([first], scanned.root, _embedder(), cache_dir=tmp_path / "cache", batch_size=2)
    assert again.cache_hits == 0  # the cache holds nothing under the recorded fingerprint
