"""Caches detect damage instead of serving it: a tensor entry or an embedding row whose bytes changed in place, a FIFO
in place of a cache file. Each is discarded with one warning and computed again (real files, real FIFOs)."""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.preprocess import make_preprocessor
from repcurate.data.scan import scan_directory
from repcurate.embed.cache import EmbeddingCache
from repcurate.embed.pipeline import load_tensors
from repcurate.embed.tensor_cache import TensorStore, load_tensors_cached
from repcurate.evaluate import EvalSource, load_eval
from repcurate.example_data import write_digits_folder
from repcurate.frameworks.loading import as_preprocessor, load_model
from tests.e2e.test_cli_options import TINY_MODEL


@pytest.fixture
def warnings_seen():
    """Warnings the ``repcurate`` logger emits during the test."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("repcurate")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


class CountingPreprocess:
    """A real preprocessing that counts the eval images (32×32 digits) it sees."""

    def __init__(self) -> None:
        self.eval_calls = 0

    def __call__(self, image):
        if image.size == (32, 32):
            self.eval_calls += 1
        return np.asarray(image.convert("L").resize((10, 10)), np.float32)[None] / 255.0


def _project(tmp_path: Path):
    write_digits_folder(tmp_path / "eval", per_class=dict.fromkeys(range(4), 3))
    scanned = scan_directory(tmp_path / "eval")
    counting = CountingPreprocess()
    return scanned, counting, make_preprocessor(counting, name="grey10")


def _entry(cache_dir: Path, pre, records) -> tuple[Path, Path]:
    store = TensorStore(cache_dir, pre.fingerprint)
    return store.paths(store.key([r.fingerprint for r in records], DEFAULT_MAX_PIXELS))


def tamper_in_place(array_path: Path) -> None:
    """Overwrite the values of a cached ``.npy`` in place: same header, same size, other numbers."""
    header_end = array_path.read_bytes().index(b"\n") + 1  # the .npy header ends with a newline
    with open(array_path, "r+b") as handle:
        handle.seek(header_end)
        values = np.frombuffer(handle.read(), np.float32).copy()
        handle.seek(header_end)
        handle.write((values * 0.5 + 0.25).astype(np.float32).tobytes())
    assert array_path.stat().st_size == header_end + values.nbytes


def _call_with_fifo_guard(fifo: Path, call, timeout: float = 30.0):
    """Run ``call()`` in a thread; if it is still blocked on ``fifo`` after ``timeout``, open the FIFO's other end to
    release it, then fail. Returns ``call()``'s result."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
            try:
                os.close(os.open(fifo, flags))
            except OSError:
                pass
        worker.join(10)
        pytest.fail(f"the load hung on the FIFO {fifo} for {timeout:.0f} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def test_a_tensor_entry_changed_in_place_is_discarded_with_one_warning_and_decoded_again(tmp_path, warnings_seen):
    scanned, counting, pre = _project(tmp_path)
    cache_dir = tmp_path / "cache"
    plain = load_tensors(scanned.records, scanned.root, pre)
    load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    array_path, _ = _entry(cache_dir, pre, scanned.records)
    good = array_path.read_bytes()
    tamper_in_place(array_path)
    counting.eval_calls = 0
    again = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    assert counting.eval_calls == 12  # decoded again, not served
    np.testing.assert_array_equal(again, plain)
    assert len(warnings_seen) == 1 and "does not match its checksum" in warnings_seen[0], warnings_seen
    assert str(array_path) in warnings_seen[0]
    assert array_path.read_bytes() == good  # rewritten with the right values
    counting.eval_calls = 0
    np.testing.assert_array_equal(load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir), plain)
    assert counting.eval_calls == 0 and len(warnings_seen) == 1  # the rewritten entry is served, silently


@pytest.mark.parametrize("which", ["array", "index"])
def test_a_fifo_in_place_of_a_tensor_entry_file_does_not_hang_and_is_decoded_again(tmp_path, warnings_seen, which):
    scanned, counting, pre = _project(tmp_path)
    cache_dir = tmp_path / "cache"
    plain = load_tensors_cached(scanned.records, scanned.root, pre, cache_dir=cache_dir)
    plain = np.array(plain)
    array_path, index_path = _entry(cache_dir, pre, scanned.records)
    fifo = array_path if which == "array" else index_path
    fifo.unlink()
    os.mkfifo(fifo)
    counting.eval_calls = 0
    again = _call_with_fifo_guard(fifo, lambda: load_tensors_cached(scanned.records, scanned.root, pre,
                                                                    cache_dir=cache_dir))
    assert counting.eval_calls == 12
    np.testing.assert_array_equal(again, plain)
    assert len(warnings_seen) == 1 and "not a regular file" in warnings_seen[0], warnings_seen
    assert fifo.is_file()  # replaced by a real entry file


def test_the_confirm_eval_load_decodes_a_tampered_entry_again(tmp_path, warnings_seen):
    """``load_eval`` (what ``confirm`` and ``doctor`` run) with the tensor cache: the tampered values never reach the
    model; the second load's tensors and float outputs equal the first's."""
    write_digits_folder(tmp_path / "eval", per_class=dict.fromkeys(range(3), 4))
    (tmp_path / "tiny_model.py").write_text(TINY_MODEL)
    loaded = load_model(f"{tmp_path / 'tiny_model.py'}:make_model")
    cache_dir = tmp_path / "cache"

    def evaluate():
        return load_eval(EvalSource(tmp_path / "eval"), framework=loaded.framework, float_model=loaded.model, manifest={},
                         preprocessor=as_preprocessor(f"{tmp_path / 'tiny_model.py'}:preprocess"),
                         model_spec=loaded.spec, cache_dir=cache_dir)

    clean = evaluate()
    clean_x = np.array(clean.x)
    [array_path] = list(cache_dir.glob("tensors-*/*.npy"))
    tamper_in_place(array_path)
    again = evaluate()
    np.testing.assert_array_equal(np.asarray(again.x), clean_x)
    assert len(warnings_seen) == 1 and "does not match its checksum" in warnings_seen[0], warnings_seen


M, P = "m" * 32, "p" * 32


def test_an_embedding_row_changed_in_place_is_not_served(tmp_path, warnings_seen):
    cache = EmbeddingCache(tmp_path, M, P)
    vectors = {f"k{i}": np.arange(8, dtype=np.float32) + i for i in range(5)}
    cache.put_many(list(vectors.items()))
    cache.close()
    with sqlite3.connect(cache.path) as db:  # same length, finite, other values; the checksum column untouched
        db.execute("UPDATE embeddings SET vec = ? WHERE content = 'k2'", (np.full(8, 3.0, np.float32).tobytes(),))
    db.close()
    reopened = EmbeddingCache(tmp_path, M, P)
    found = reopened.get_many(list(vectors))
    assert sorted(found) == ["k0", "k1", "k3", "k4"]  # k2 is computed again by the caller
    for key, vector in found.items():
        np.testing.assert_array_equal(vector, vectors[key])
    assert len(warnings_seen) == 1 and "1 cached vectors do not match their checksum" in warnings_seen[0]
    reopened.put_many([("k2", vectors["k2"])])  # what embed_records does with a recomputed vector
    np.testing.assert_array_equal(reopened.get_many(["k2"])["k2"], vectors["k2"])
    reopened.close()


def test_embed_records_computes_a_tampered_row_again(tmp_path, warnings_seen):
    """Through the embedding driver: the build's vectors with a tampered cache row equal a run without the cache."""
    from repcurate.embed.pipeline import embed_records

    write_digits_folder(tmp_path / "train", per_class=dict.fromkeys(range(3), 2))
    (tmp_path / "tiny_model.py").write_text(TINY_MODEL)
    scanned = scan_directory(tmp_path / "train")
    from repcurate.embed.loading import build_embedder

    embedder, _ = build_embedder(f"{tmp_path / 'tiny_model.py'}:make_model", layer=None,
                                 preprocess=f"{tmp_path / 'tiny_model.py'}:preprocess")
    plain = embed_records(scanned.records, scanned.root, embedder, cache_dir=None, progress=False)
    embed_records(scanned.records, scanned.root, embedder, cache_dir=tmp_path / "cache", progress=False)
    [database] = list((tmp_path / "cache").glob("emb-*.sqlite"))
    victim = scanned.records[1].fingerprint
    with sqlite3.connect(database) as db:
        (blob,) = db.execute("SELECT vec FROM embeddings WHERE content = ?", (victim,)).fetchone()
        db.execute("UPDATE embeddings SET vec = ? WHERE content = ?",
                   ((np.frombuffer(blob, np.float32) + 1.0).astype(np.float32).tobytes(), victim))
    db.close()
    again = embed_records(scanned.records, scanned.root, embedder, cache_dir=tmp_path / "cache", progress=False)
    assert again.computed == 1 and again.cache_hits == len(scanned.records) - 1
    np.testing.assert_array_equal(again.vectors, plain.vectors)
    assert len(warnings_seen) == 1 and "do not match their checksum" in warnings_seen[0], warnings_seen


@pytest.mark.parametrize("side", ["", "-wal"])
def test_a_fifo_in_place_of_the_embedding_database_does_not_hang(tmp_path, warnings_seen, side):
    cache = EmbeddingCache(tmp_path, M, P)
    cache.put_many([("a", np.ones(4, np.float32))])
    cache.close()
    fifo = Path(f"{cache.path}{side}")
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)

    def use():
        again = EmbeddingCache(tmp_path, M, P)
        found = again.get_many(["a"])
        again.put_many([("b", np.ones(4, np.float32))])
        enabled = again.enabled
        again.close()
        return found, enabled

    found, enabled = _call_with_fifo_guard(fifo, use)
    assert enabled  # a fresh database in its place
    assert not fifo.exists() or fifo.is_file()
    assert any("was not a regular file; removed it" in w for w in warnings_seen), warnings_seen
    if side == "":
        assert found == {}  # the vectors went with the database
