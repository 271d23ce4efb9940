"""The eval tensor cache: a second load decodes nothing and gives the same array; damage never ends a run."""
from __future__ import annotations

import json

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.preprocess import make_preprocessor
from repcurate.data.scan import scan_directory
from repcurate.embed.pipeline import load_tensors
from repcurate.embed.tensor_cache import TensorStore, load_tensors_cached, load_tensors_cached_skipping
from repcurate.example_data import write_digits_folder


class CountingPreprocess:
    """A real preprocessing that counts the eval images (32×32 digits) it sees."""

    def __init__(self) -> None:
        self.eval_calls = 0

    def __call__(self, image):
        if image.size == (32, 32):
            self.eval_calls += 1
        return np.asarray(image.convert("L").resize((10, 10)), np.float32)[None] / 255.0


def _project(tmp_path):
    write_digits_folder(tmp_path / "eval", per_class=dict.fromkeys(range(4), 3))
    scanned = scan_directory(tmp_path / "eval")
    counting = CountingPreprocess()
    return scanned, counting, make_preprocessor(counting, name="grey10")


def _entry(cache_dir, pre, records):
    store = TensorStore(cache_dir, pre.fingerprint)
    return store.paths(store.key([r.fingerprint for r in records], DEFAULT_MAX_PIXELS))


def test_a_second_load_decodes_nothing_and_gives_the_same_tensors(tmp_path):
    scanned, counting, pre = _project(tmp_path)
    plain = load_tensors(scanned.records, scanned.root, pre)
    counting.eval_calls = 0
    first = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=tmp_path / "cache")
    assert counting.eval_calls == 12
    second = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=tmp_path / "cache")
    assert counting.eval_calls == 12  # nothing decoded the second time
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(second, plain)
    assert second.dtype == np.float32 and second.shape == (12, 1, 10, 10)
    assert isinstance(second, np.memmap)  # mapped, not read: a warm load starts at once
    array_path, _ = _entry(tmp_path / "cache", pre, scanned.records)
    before = array_path.read_bytes()
    second[0] = 7.0  # the caller may write to it (copy-on-write): the cached file never changes
    assert array_path.read_bytes() == before
    np.testing.assert_array_equal(load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=tmp_path / "cache"),
                                  plain)


def test_another_record_list_is_another_entry(tmp_path):
    scanned, counting, pre = _project(tmp_path)
    cache_dir = tmp_path / "cache"
    load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    counting.eval_calls = 0
    part = load_tensors_cached(scanned.records[:5], scanned.root, pre, cache_dir=cache_dir)
    assert counting.eval_calls == 5
    np.testing.assert_array_equal(part, load_tensors(scanned.records[:5], scanned.root, pre))
    assert len(list(TensorStore(cache_dir, pre.fingerprint).directory.glob("*.npy"))) == 2


def test_a_damaged_entry_is_decoded_again_and_rewritten(tmp_path):
    scanned, counting, pre = _project(tmp_path)
    cache_dir = tmp_path / "cache"
    expected = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    array_path, index_path = _entry(cache_dir, pre, scanned.records)
    good = array_path.read_bytes()
    for damage in (lambda: array_path.write_bytes(good[:-40]),                       # truncated array
                   lambda: array_path.write_bytes(b"not an npy file" * 10),          # not an array at all
                   lambda: index_path.write_text("{broken", encoding="utf-8"),       # unreadable index
                   lambda: index_path.write_text(json.dumps({**json.loads(index_path.read_text()),  # wrong rows
                                                             "rows": ["x"] * 3}), encoding="utf-8"),
                   lambda: array_path.unlink()):
        damage()
        counting.eval_calls = 0
        again = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
        assert counting.eval_calls == 12
        np.testing.assert_array_equal(again, expected)
        assert array_path.read_bytes() == good  # rewritten
    assert not [p for p in array_path.parent.iterdir() if p.name.startswith(".")]  # no staging file left behind


def test_files_that_failed_are_decoded_again_and_the_rest_come_from_the_cache(tmp_path):
    scanned, counting, pre = _project(tmp_path)
    bad = scanned.root / scanned.records[3].path
    good_bytes = bad.read_bytes()
    bad.write_bytes(good_bytes[:60])  # truncated PNG: fails to decode, same for every load
    rescanned = scan_directory(scanned.root)
    cache_dir = tmp_path / "cache"
    first, failed = load_tensors_cached_skipping(rescanned.records, rescanned.root, pre, cache_dir=cache_dir)
    assert [f.path for f in failed] == [rescanned.records[3].path]
    counting.eval_calls = 0
    second, failed_again = load_tensors_cached_skipping(rescanned.records, rescanned.root, pre, cache_dir=cache_dir)
    assert counting.eval_calls == 0  # the bad file is decoded again (and fails before preprocessing), nothing else
    assert failed_again == failed
    assert first is not None and second is not None and first.shape[0] == 11
    np.testing.assert_array_equal(second, first)


def test_an_unwritable_cache_warns_once_and_the_load_goes_on(tmp_path, caplog):
    scanned, _, pre = _project(tmp_path)
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    loaded = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=blocker)
    np.testing.assert_array_equal(loaded, load_tensors(scanned.records, scanned.root, pre))
    assert "eval tensor cache" in caplog.text and "running without it" in caplog.text
