"""Candidate pools: per class, a seeded random sample of the files ``build`` embeds instead of every file.

A set has a few hundred images; the folder it is drawn from may have millions. ``build --pool`` embeds,
per class (the label the task balances), a seeded uniform random sample of that class's files — a
stratified random pool — and selection, deduplication, outliers and coverage work on the pool.

- ``--pool all``: every file (the behaviour before pools existed).
- ``--pool N``: at most ``N`` files per class (all of a smaller class).
- default (``--pool auto``): per class ``min(files, max(POOL_FACTOR × quota, POOL_MIN))``, the quota being
  the class's share of ``--size`` under ``--balance`` computed on the folder's file counts. See
  BENCHMARKS.md ("Candidate pools") for the measurement behind the two constants.

Pools are nested: with the same seed, a smaller pool of a class is a prefix of a larger one (one seeded
permutation per class), and the draw depends only on the seed, the class name and the class's sorted file
list. Same folder + seed ⇒ same pool.
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repcurate.options import MAX_COUNT, OptionError
from repcurate.select.quotas import ClassQuota, water_fill

#: Default pool per class: this many times the class's quota ...
POOL_FACTOR = 32
#: ... and at least this many files (a class whose quota rounds to 0 or 1 still gets a sample to
#: estimate its spread, outliers and coverage from).
POOL_MIN = 16
#: The stream tag that keeps the pool draw independent of the selection's per-class seeds.
_POOL_STREAM = 0x9001

QuotaRule = Callable[[dict[str | None, int], int, str], list[Any]]


@dataclass(frozen=True)
class PoolRule:
    """How many files per class ``build`` embeds: ``"auto"`` (the default rule), ``"all"``, or ``per_class``."""

    kind: str
    per_class: int | None = None

    def describe(self) -> str:
        """The rule in words, as the manifest records it."""
        if self.kind == "all":
            return "all: every file of every class"
        if self.kind == "fixed":
            return f"{self.per_class} per class: min(files, {self.per_class}), seeded uniform random within each class"
        return (f"auto: per class min(files, max({POOL_FACTOR} x quota, {POOL_MIN})), the quota computed on the "
                "folder's file counts; seeded uniform random within each class")

    @property
    def value(self) -> str | int:
        """The ``--pool`` value that gives this rule."""
        return self.per_class if self.kind == "fixed" and self.per_class is not None else self.kind


def parse_pool(value: object) -> PoolRule:
    """``--pool``'s value: ``None`` / ``"auto"`` (default rule), ``"all"``, or a positive integer (also as text)."""
    if value is None or value == "auto":
        return PoolRule("auto")
    if value == "all":
        return PoolRule("all")
    number: int | None = None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_COUNT:
        raise OptionError(f"--pool (pool): {value!r} is not 'all', 'auto' or an integer from 1 to {MAX_COUNT}; "
                          "fix: pass --pool all, --pool auto or --pool N (files per class)")
    return PoolRule("fixed", number)


def _label_key(label: str | None) -> str:
    return "" if label is None else label


def class_rows(labels: Sequence[str | None]) -> dict[str | None, np.ndarray]:
    """Label → its row numbers (ascending), labels sorted (``None`` first)."""
    rows: dict[str | None, list[int]] = {}
    for i, label in enumerate(labels):
        rows.setdefault(label, []).append(i)
    return {lab: np.asarray(rows[lab], dtype=np.int64) for lab in sorted(rows, key=_label_key)}


def pool_sizes(class_files: dict[str | None, int], rule: PoolRule, *, size: int, balance: str,
               quota_rule: QuotaRule) -> dict[str | None, int]:
    """Files to embed per class under ``rule``: every class keeps at least one file, never more than it has."""
    if rule.kind == "all":
        return dict(class_files)
    if rule.kind == "fixed":
        assert rule.per_class is not None
        return {lab: min(n, rule.per_class) for lab, n in class_files.items()}
    quotas = {q.label: q.quota for q in quota_rule(dict(class_files), size, balance)}
    return {lab: min(n, max(POOL_FACTOR * quotas.get(lab, 0), POOL_MIN)) for lab, n in class_files.items()}


def pool_seed(seed: int, label: str | None) -> np.random.SeedSequence:
    """The seed of one class's pool draw: the global seed, the class name and the pool stream."""
    tag = zlib.crc32(("\0" if label is None else label).encode("utf-8", "surrogateescape"))
    return np.random.SeedSequence([seed, tag, _POOL_STREAM])


def draw_pool(labels: Sequence[str | None], sizes: dict[str | None, int], *, seed: int) -> np.ndarray:
    """Row numbers (ascending) of the pool: per class, the first ``sizes[label]`` rows of a seeded permutation
    of that class's rows (so a smaller pool is a subset of a larger one). ``labels`` must come in a fixed
    order (the listing's sorted paths)."""
    chosen: list[np.ndarray] = []
    for label, rows in class_rows(labels).items():
        take = sizes.get(label, rows.size)
        if take >= rows.size:
            chosen.append(rows)
        elif take > 0:
            order = np.random.default_rng(pool_seed(seed, label)).permutation(rows.size)
            chosen.append(rows[order[:take]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def pool_digest(paths: Sequence[str]) -> str:
    """SHA-256 of the pool's sorted paths (one per line): names the pool without listing it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def pooled_quota_rule(base: QuotaRule, class_files: dict[str | None, int]) -> QuotaRule:
    """``base`` for a pool: proportional shares follow the folder's class sizes, not the pool's.

    With ``--balance proportional`` a pool of ``N`` per class would otherwise make every large class look
    the same size. Shares come from ``class_files``; each class still gives at most what its pool has
    (``available``), the shortfall spread over the other classes by the same shares. ``uniform`` shares do
    not depend on sizes: ``base`` as it is.
    """
    def rule(available: dict[str | None, int], size: int, balance: str) -> list[Any]:
        if balance != "proportional":
            return base(available, size, balance)
        present = [lab for lab in available if available[lab] > 0]
        if not present:
            return []
        weights = {lab: max(class_files.get(lab, 0), available[lab]) for lab in present}
        requested = {q.label: q.requested for q in base(weights, size, balance)}
        quota = water_fill(available, size, present, lambda open_labels, remaining: {
            q.label: q.quota for q in base({lab: weights[lab] for lab in open_labels}, remaining, balance)})
        return [ClassQuota(lab, available[lab], requested.get(lab, 0), quota.get(lab, 0))
                for lab in sorted(present, key=_label_key)]

    return rule


@dataclass
class Pool:
    """The rows of a listing that ``build`` embeds, and how they were chosen."""

    rule: PoolRule
    rows: np.ndarray
    class_files: dict[str | None, int]
    class_pool: dict[str | None, int]

    @property
    def complete(self) -> bool:
        """Whether the pool holds every file (then ``build`` behaves exactly as without pools)."""
        return all(self.class_pool[lab] >= n for lab, n in self.class_files.items())

    def manifest_section(self, paths: Sequence[str], seed: int) -> dict[str, Any]:
        """What the manifest records: the rule, the seed, per-class file and pool counts, the pool's digest."""
        return {"rule": self.rule.describe(), "value": self.rule.value, "seed": seed,
                "files": int(sum(self.class_files.values())), "pooled": int(self.rows.size),
                "paths_sha256": pool_digest(paths),
                "classes": [{"label": lab, "files": int(self.class_files[lab]), "pool": int(self.class_pool[lab])}
                            for lab in sorted(self.class_files, key=_label_key)]}


def choose_pool(labels: Sequence[str | None], rule: PoolRule, *, size: int, balance: str, seed: int,
                quota_rule: QuotaRule) -> Pool:
    """The pool of a listing whose files have ``labels`` (in the listing's order)."""
    class_files: dict[str | None, int] = {lab: int(rows.size) for lab, rows in class_rows(labels).items()}
    sizes = pool_sizes(class_files, rule, size=size, balance=balance, quota_rule=quota_rule)
    rows = np.arange(len(labels), dtype=np.int64) if rule.kind == "all" else draw_pool(labels, sizes, seed=seed)
    return Pool(rule=rule, rows=rows, class_files=class_files, class_pool=sizes)
