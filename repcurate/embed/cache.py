"""On-disk embedding cache: one SQLite file per (model, preprocessing) pair, keyed by file content."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

SCHEMA = "CREATE TABLE IF NOT EXISTS embeddings (content TEXT PRIMARY KEY, dim INTEGER, vec BLOB)"


def default_cache_dir() -> Path:
    """``$REPCURATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/repcurate``, else ``~/.cache/repcurate``."""
    if env := os.environ.get("REPCURATE_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "repcurate"


class EmbeddingCache:
    """Float32 vectors keyed by content fingerprint, for one model + preprocessing fingerprint.

    A changed file has a new content fingerprint and is re-embedded; a changed model or
    preprocessing opens a different database.
    """

    def __init__(self, directory: Path, model_fingerprint: str, preprocessing_fingerprint: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"emb-{model_fingerprint[:16]}-{preprocessing_fingerprint[:16]}.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys``."""
        found: dict[str, np.ndarray] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, dim, blob in self._db.execute(
                f"SELECT content, dim, vec FROM embeddings WHERE content IN ({marks})", chunk
            ):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    found[key] = vec
        return found

    def put_many(self, items: list[tuple[str, np.ndarray]]) -> None:
        """Store vectors (one transaction)."""
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
