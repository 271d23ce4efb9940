"""The eval tensor cache: a second load decodes nothing and gives the same array; damage never ends a run."""
from __future__ import annotations

import sqlite3

import numpy as np

from repcurate.data.preprocess import make_preprocessor
from repcurate.data.scan import scan_directory
from repcurate.embed.pipeline import load_tensors
from repcurate.embed.tensor_cache import TensorCache, load_tensors_cached
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
    write_digits_folder(tmp_path / "eval", per_class={d: 3 for d in range(4)})
    scanned = scan_directory(tmp_path / "eval")
    counting = CountingPreprocess()
    return scanned, counting, make_preprocessor(counting, name="grey10")


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


def test_a_damaged_row_is_decoded_again_and_a_corrupt_database_moved_aside(tmp_path):
    scanned, counting, pre = _project(tmp_path)
    cache_dir = tmp_path / "cache"
    expected = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    path = TensorCache(cache_dir, pre.fingerprint).path
    with sqlite3.connect(path) as db:
        db.execute("UPDATE tensors SET data = ? WHERE content = ?", (b"\x00" * 7, scanned.records[0].fingerprint))
        db.execute("UPDATE tensors SET data = ? WHERE content = ?",
                   (np.full((1, 10, 10), np.nan, np.float32).tobytes(), scanned.records[1].fingerprint))
    counting.eval_calls = 0
    again = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    assert counting.eval_calls == 2
    np.testing.assert_array_equal(again, expected)
    path.write_bytes(b"this is not an SQLite database" * 100)
    for side in ("-wal", "-shm"):
        (cache_dir / f"{path.name}{side}").unlink(missing_ok=True)
    counting.eval_calls = 0
    recovered = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    assert counting.eval_calls == 12
    np.testing.assert_array_equal(recovered, expected)
    assert list(cache_dir.glob(f"{path.name}.corrupt-*"))
