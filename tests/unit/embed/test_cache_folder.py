"""The cache folder's upkeep: a size cap kept by least-recently-used eviction, earlier versions' files removed, an
open database never removed, ``repcurate cache info`` / ``prune`` through the real command, and two processes
reading, writing and pruning one folder at once."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from repcurate.embed.cache import EmbeddingCache
from repcurate.embed.cache_folder import (
    DEFAULT_MAX_BYTES,
    ENV_MAX,
    cache_info,
    cache_max_bytes,
    enforce_cap,
    parse_size,
    prune,
)
from repcurate.embed.tensor_cache import TensorStore
from repcurate.errors import UsageError

PRE = "f" * 64
ROOT = Path(__file__).resolve().parents[3]


def _sample(k: int) -> np.ndarray:
    """Entry ``k``'s array: 25,600 float32 = 100 KiB, values that name it."""
    return np.full((1, 160, 160), k, np.float32)


def _put(store: TensorStore, k: int) -> str:
    key = store.key([f"row{k}"], 1)
    store.put(key, _sample(k), [f"row{k}"])
    return key


def _age(store: TensorStore, key: str, when: float) -> None:
    for path in store.paths(key):
        os.utime(path, (when, when))


def test_sizes_parse_and_a_bad_cap_is_a_usage_error(monkeypatch) -> None:
    assert parse_size("4G") == parse_size("4GiB") == parse_size("4 gb") == 4 * 2**30
    assert parse_size("500M") == 500 * 2**20 and parse_size("1.5K") == 1536 and parse_size("0") == 0
    assert parse_size("none") is None
    for bad in ("", "-1G", "4X", "G", "1e9"):
        with pytest.raises(ValueError):
            parse_size(bad)
    monkeypatch.delenv(ENV_MAX, raising=False)
    assert cache_max_bytes() == DEFAULT_MAX_BYTES == 4 * 2**30
    monkeypatch.setenv(ENV_MAX, "lots")
    with pytest.raises(UsageError, match=f"{ENV_MAX}='lots' is not a size; fix: "):
        cache_max_bytes()


def test_writes_keep_the_folder_under_the_cap_dropping_the_least_recently_used(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_MAX, "350K")  # three 100 KiB entries fit, four do not
    store = TensorStore(tmp_path, PRE)
    keys = [_put(store, k) for k in range(3)]
    for age, key in enumerate(keys):
        _age(store, key, 1_000_000 + age)  # used in the order 0, 1, 2
    assert store.get(keys[0]) is not None  # a read marks entry 0 as used now: 1 is the least recently used
    fourth = _put(store, 3)
    info = cache_info(tmp_path)
    assert info.size <= 350 * 2**10
    assert store.get(keys[1]) is None and not any(p.exists() for p in store.paths(keys[1]))
    for key, k in ((keys[0], 0), (keys[2], 2), (fourth, 3)):
        entry = store.get(key)
        assert entry is not None and np.array_equal(entry[0], _sample(k))
    assert info.by_kind()["tensors"][0] == 3


def test_an_open_database_is_never_evicted_and_a_closed_one_is(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_MAX, "none")
    database = EmbeddingCache(tmp_path, "m" * 32, "p" * 32)
    database.put_many([(f"k{i}", np.full(256, i, np.float32)) for i in range(200)])
    result = prune(tmp_path, 0)
    assert [item.paths[0] for item in result.in_use] == [database.path] and database.path.exists()
    assert sorted(database.get_many(["k5"])) == ["k5"]  # still served
    database.close()
    result = prune(tmp_path, 0)
    assert not database.path.exists() and result.freed > 200 * 1024 and result.after == 0
    assert cache_info(tmp_path).size == 0


def test_earlier_versions_are_removed_and_other_files_left_alone(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.delenv(ENV_MAX, raising=False)
    old = [tmp_path / "tensors-0123456789abcdef0123456789abcdef.sqlite",
           tmp_path / "tensors-0123456789abcdef0123456789abcdef.sqlite-wal",
           tmp_path / "emb-0123456789abcdef-fedcba9876543210.sqlite",
           tmp_path / "tensors-0123456789abcdef0123456789abcdef" / "k.npy"]
    for path in old:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    others = [tmp_path / "notes.txt", tmp_path / "keys" / "user.key"]
    for path in others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not repcurate's cache")
    assert cache_info(tmp_path).by_kind()["old-version"] == (4, 4000)
    with caplog.at_level(logging.INFO, logger="repcurate"):
        _put(TensorStore(tmp_path, PRE), 0)  # any write keeps the folder
    assert not any(path.exists() for path in old) and not old[-1].parent.exists()
    assert all(path.read_text() == "not repcurate's cache" for path in others)
    assert "removed 4 files of an earlier cache version" in caplog.text
    info = cache_info(tmp_path)
    assert info.by_kind()["old-version"] == (0, 0) and len(info.other) == 2


def test_a_bad_cap_in_the_environment_warns_and_keeps_the_default(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(ENV_MAX, "plenty")
    _put(TensorStore(tmp_path, PRE), 0)
    enforce_cap(tmp_path)
    assert f"{ENV_MAX}='plenty' is not a size" in caplog.text and "keeping the default cap 4.0 GiB" in caplog.text
    assert cache_info(tmp_path).by_kind()["tensors"][0] == 1


def test_cache_info_and_prune_through_the_command(tmp_path, cli) -> None:
    store = TensorStore(tmp_path / "c", PRE)
    keys = [_put(store, k) for k in range(3)]
    for age, key in enumerate(keys):
        _age(store, key, 1_000_000 + age)
    database = EmbeddingCache(tmp_path / "c", "m" * 32, "p" * 32)
    database.put_many([("a", np.ones(8, np.float32))])
    database.close()
    (tmp_path / "c" / "tensors-0123456789abcdef0123456789abcdef.sqlite").write_bytes(b"x" * 5000)

    shown = cli("cache", "info", "--cache-dir", str(tmp_path / "c"), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["kinds"]["tensors"]["items"] == 3 and info["kinds"]["embeddings"]["items"] == 1
    assert info["kinds"]["old-version"] == {"items": 1, "bytes": 5000}
    assert info["max_bytes"] == 4 * 2**30
    text = cli("cache", "info", "--cache-dir", str(tmp_path / "c"))
    assert text.returncode == 0 and "tensors" in text.stdout and "3 items" in text.stdout, text.stdout

    tensor_bytes = info["kinds"]["tensors"]["bytes"]
    keep_two = tensor_bytes - tensor_bytes // 3 + info["kinds"]["embeddings"]["bytes"]
    pruned = cli("cache", "prune", "--cache-dir", str(tmp_path / "c"), "--max", str(keep_two), "--format", "json")
    assert pruned.returncode == 0, pruned.stderr
    result = json.loads(pruned.stdout)
    assert result["removed"]["old-version"] == {"items": 1, "bytes": 5000}
    assert result["removed"]["tensors"]["items"] == 1  # the least recently used one
    assert result["bytes_after"] <= keep_two and result["bytes_freed"] == result["bytes_before"] - result["bytes_after"]
    assert store.get(keys[0]) is None and store.get(keys[1]) is not None and store.get(keys[2]) is not None

    emptied = cli("cache", "prune", "--cache-dir", str(tmp_path / "c"), "--max", "0")
    assert emptied.returncode == 0 and "freed" in emptied.stdout and "0 B left" in emptied.stdout, emptied.stdout
    assert cache_info(tmp_path / "c").size == 0

    bad = cli("cache", "prune", "--cache-dir", str(tmp_path / "c"), "--max", "1 lot")
    assert bad.returncode == 2 and "--max '1 lot' is not a size" in bad.stderr and "Traceback" not in bad.stderr
    bad_env = cli("cache", "info", "--cache-dir", str(tmp_path / "c"), env={ENV_MAX: "big"})
    assert bad_env.returncode == 2 and f"{ENV_MAX}='big' is not a size" in bad_env.stderr


_WORKER = textwrap.dedent("""
    import logging, sys
    import numpy as np
    from pathlib import Path
    from repcurate.embed.cache import EmbeddingCache
    from repcurate.embed.cache_folder import prune
    from repcurate.embed.tensor_cache import TensorStore

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    folder, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(seed)
    store = TensorStore(folder, "f" * 64)
    wrong = served = 0
    for step in range(160):
        k = int(rng.integers(0, 10))
        rows = [f"r{k}-{j}" for j in range(1 + k % 4)]
        expected = np.full((len(rows), 64, 64), k, np.float32)  # 16 KiB a row, the same bytes in both processes
        key = store.key(rows, 1)
        entry = store.get(key)
        if entry is None:
            store.put(key, expected, rows)
        else:
            served += 1
            wrong += int(entry[1] != rows or not np.array_equal(entry[0], expected))
        if step % 8 == 0:
            database = EmbeddingCache(folder, "m" * 32 if k % 2 else "n" * 32, "p" * 32)
            found = database.get_many([f"v{j}" for j in range(50)])
            wrong += sum(int(not np.array_equal(v, np.full(32, int(n[1:]), np.float32))) for n, v in found.items())
            database.put_many([(f"v{j}", np.full(32, j, np.float32)) for j in range(50)])
            wrong += int(not database.enabled)
            database.close()
        if step % 20 == 0:
            prune(folder, int(rng.integers(0, 200_000)))
    print(f"served {served} wrong {wrong}")
    sys.exit(1 if wrong else 0)
""")


def test_two_processes_reading_writing_and_pruning_one_folder(tmp_path) -> None:
    env = {**os.environ, ENV_MAX: "150K", "PYTHONPATH": str(ROOT)}  # every write evicts something
    runs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / "cache"), str(seed)], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outcomes = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outcomes):
        assert run.returncode == 0, (out, err)
        assert "wrong 0" in out and "Traceback" not in err, (out, err)
        assert not any(word in err for word in ("damaged", "checksum", "corrupt", "unusable")), err
    assert sum(int(out.split()[1]) for out, _ in outcomes) > 0  # entries were served, not only written
    info = cache_info(tmp_path / "cache")
    assert info.by_kind()["quarantined"] == (0, 0)
    store = TensorStore(tmp_path / "cache", PRE)
    for index in (tmp_path / "cache").glob("tensors-*/*.json"):  # whatever is left reads back whole
        rows = json.loads(index.read_text())["rows"]
        entry = store.get(index.stem)
        assert (entry is not None and entry[1] == rows) or not index.with_suffix(".npy").exists()


def test_fifos_in_place_of_the_lock_files_never_block(tmp_path, monkeypatch) -> None:
    from repcurate.embed.cache_folder import LOCK_NAME, PRUNE_LOCK_NAME

    monkeypatch.setenv(ENV_MAX, "0")
    tmp_path.mkdir(exist_ok=True)
    for name in (LOCK_NAME, PRUNE_LOCK_NAME):
        os.mkfifo(tmp_path / name)
    code = ("import sys, numpy as np; from pathlib import Path; from repcurate.embed.cache import EmbeddingCache;"
            "from repcurate.embed.cache_folder import prune; c = EmbeddingCache(Path(sys.argv[1]), 'm' * 32, 'p' * 32);"
            "c.put_many([('a', np.ones(4, np.float32))]); print(sorted(c.get_many(['a']))); c.close();"
            "print(len(prune(Path(sys.argv[1]), 0).in_use))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    # without a usable lock a database is never removed (it might be open elsewhere): kept and reported
    assert done.returncode == 0 and done.stdout.split() == ["['a']", "1"], (done.stdout, done.stderr)
