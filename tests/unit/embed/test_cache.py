"""The SQLite embedding cache."""
from __future__ import annotations

import numpy as np

from repcurate.embed.cache import EmbeddingCache, default_cache_dir
from repcurate.embed.cache_folder import LOCK_NAME


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


# --- a damaged or unusable cache never ends a run ----------------------------------------------------

import logging  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

M, P = "m" * 32, "p" * 32


@pytest.fixture
def cache_log():
    """Messages the ``repcurate`` logger emits during the test (whatever handlers the CLI set up)."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("repcurate")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def _filled(directory: Path, n: int = 3000) -> Path:
    cache = EmbeddingCache(directory, M, P)
    cache.put_many([(f"k{i}", np.full(64, i, np.float32)) for i in range(n)])
    cache.close()
    return cache.path


@pytest.mark.parametrize("damage", ["truncated_header", "truncated_half", "garbage"])
def test_corrupt_database_is_moved_aside_and_replaced(tmp_path, cache_log, damage) -> None:
    path = _filled(tmp_path)
    data = path.read_bytes()
    damaged = {"truncated_header": data[:100], "truncated_half": data[: len(data) // 2],
               "garbage": np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes()}[damage]
    path.write_bytes(damaged)
    cache = EmbeddingCache(tmp_path, M, P)
    assert cache.get_many(["k1", "k2"]) == {}  # a half-truncated file opens; the read finds the damage
    cache.put_many([("new", np.ones(4, np.float32))])
    assert cache.enabled and sorted(cache.get_many(["new", "k1"])) == ["new"]
    cache.close()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].name.startswith(path.name + ".corrupt-")
    assert aside[0].read_bytes() == damaged  # kept for inspection, untouched
    assert len(cache_log) == 1, cache_log
    assert cache_log[0].startswith(f"embedding cache {path} is corrupt (") and f"moved it to {aside[0]}" in cache_log[0]
    reopened = EmbeddingCache(tmp_path, M, P)  # the next run finds a healthy cache, no warning
    assert sorted(reopened.get_many(["new"])) == ["new"] and len(cache_log) == 1


def _unusable(tmp_path: Path, kind: str) -> Path:
    if kind == "dir_is_a_file":
        (tmp_path / "cache").write_text("not a folder")
        return tmp_path / "cache"
    if kind == "dir_below_a_file":
        (tmp_path / "file").write_text("not a folder")
        return tmp_path / "file" / "cache"
    # the database's own path is taken by a folder: SQLite cannot open it
    directory = tmp_path / "cache"
    EmbeddingCache(directory, M, P).close()
    db = next(directory.glob("emb-*.sqlite"))
    for p in directory.iterdir():
        p.unlink()
    db.mkdir()
    return directory


@pytest.mark.parametrize("kind", ["dir_is_a_file", "dir_below_a_file", "database_is_a_folder"])
def test_unusable_cache_runs_without_it(tmp_path, cache_log, kind) -> None:
    directory = _unusable(tmp_path, kind)
    before = sorted(p.name for p in tmp_path.rglob("*") if p.name != LOCK_NAME)
    cache = EmbeddingCache(directory, M, P)
    assert not cache.enabled
    cache.put_many([("a", np.ones(3, np.float32))])
    assert cache.get_many(["a"]) == {}
    cache.close()
    again = EmbeddingCache(directory, M, P)  # a second open in the same run does not warn again
    assert not again.enabled
    assert len(cache_log) == 1
    assert cache_log[0].startswith(f"embedding cache {cache.path} unusable (")
    assert cache_log[0].endswith("); running without the cache")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name != LOCK_NAME) == before  # nothing moved or created (the lock is the folder's)


def test_non_finite_cached_vectors_are_not_served(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path, M, P)
    cache.put_many([("nan", np.array([1.0, np.nan], np.float32)), ("ok", np.array([1.0, 2.0], np.float32))])
    assert sorted(cache.get_many(["nan", "ok"])) == ["ok"]


_READ_ONLY_CHILD = """
import logging, sys
import numpy as np
from pathlib import Path
from repcurate.embed.cache import EmbeddingCache
logging.basicConfig(level=logging.WARNING, format="%(message)s")
cache = EmbeddingCache(Path(sys.argv[1]), "m" * 32, "p" * 32)
cache.put_many([("b", np.ones(2, np.float32))])
print(cache.enabled, sorted(cache.get_many(["a", "b"])))
"""


def test_read_only_cache_runs_without_it(tmp_path) -> None:
    """A cache folder and database the user may read but not write (modes 0555 / 0444). Root ignores
    file modes, so as root the child that opens the cache runs without the capabilities that let root
    override them (``capsh --drop``): it then meets the modes exactly as an ordinary user would."""
    command = [sys.executable, "-c", _READ_ONLY_CHILD, str(tmp_path / "cache")]
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("root without capsh cannot be made to honour file modes")
        command = ["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c",
                   "exec " + shlex.join(command)]
    directory = tmp_path / "cache"
    _filled(directory, n=2)
    for p in directory.iterdir():
        p.chmod(0o444)
    directory.chmod(0o555)
    try:
        before = {p.name: p.read_bytes() for p in directory.iterdir()}
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False []"
        assert "unusable" in result.stderr and "running without the cache" in result.stderr
        assert "Traceback" not in result.stderr
        assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    finally:
        directory.chmod(0o755)


def test_opening_waits_while_another_process_holds_the_database(tmp_path, cache_log) -> None:
    """While a concurrent build writes the new database, ``journal_mode=WAL`` answers SQLITE_BUSY at once
    (SQLite skips its busy handler there): the cache waits instead of running without itself."""
    import sqlite3
    import threading

    path = EmbeddingCache(tmp_path, M, P).path
    path.unlink()
    holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the RESERVED lock a writer holds
    threading.Timer(0.5, lambda: holder.execute("ROLLBACK")).start()
    cache = EmbeddingCache(tmp_path, M, P)
    assert cache.enabled and cache_log == []
    cache.put_many([("a", np.ones(3, np.float32))])
    assert sorted(cache.get_many(["a"])) == ["a"]
    holder.close()
