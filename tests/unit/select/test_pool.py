"""Candidate pools: stratified per class, seeded, deterministic, nested; the default rule; pooled quotas."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.errors import UsageError
from repcurate.select.pool import (
    POOL_FACTOR,
    POOL_MIN,
    PoolRule,
    choose_pool,
    draw_pool,
    parse_pool,
    pool_digest,
    pool_sizes,
    pooled_quota_rule,
)
from repcurate.select.quotas import compute_quotas

#: A long-tailed labelling in a fixed (sorted-path-like) order: 500 / 120 / 7 files, interleaved.
LABELS: list[str | None] = [lab for i in range(500) for lab in (["a"] + (["b"] if i < 120 else []) + (["c"] if i < 7 else []))]


def _counts(rows: np.ndarray, labels: list[str | None]) -> dict[str | None, int]:
    found: dict[str | None, int] = {}
    for r in rows:
        found[labels[r]] = found.get(labels[r], 0) + 1
    return found


@pytest.mark.parametrize("value, rule", [(None, PoolRule("auto")), ("auto", PoolRule("auto")), ("all", PoolRule("all")),
                                         (64, PoolRule("fixed", 64)), ("64", PoolRule("fixed", 64)),
                                         (np.int64(3), PoolRule("fixed", 3))])
def test_parse_pool_accepts_all_auto_and_positive_counts(value, rule) -> None:
    assert parse_pool(value) == rule


@pytest.mark.parametrize("value", ["0", 0, -5, "-5", "x", "", 2.5, True, "1e3", 2**31])
def test_parse_pool_refuses_anything_else_as_a_usage_error(value) -> None:
    with pytest.raises(UsageError, match=r"--pool .*fix: pass --pool all"):
        parse_pool(value)


def test_pool_is_stratified_per_class_and_capped_by_the_class() -> None:
    rows = draw_pool(LABELS, {"a": 40, "b": 40, "c": 40}, seed=0)
    assert _counts(rows, LABELS) == {"a": 40, "b": 40, "c": 7}
    assert list(rows) == sorted(set(rows.tolist()))  # ascending, no repeats


def test_same_seed_same_pool_other_seed_other_pool() -> None:
    sizes = {"a": 40, "b": 40, "c": 40}
    first, again, other = (draw_pool(LABELS, sizes, seed=s) for s in (0, 0, 1))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert _counts(other, LABELS) == _counts(first, LABELS)


def test_pools_are_nested_and_a_class_draw_ignores_other_classes() -> None:
    small = set(draw_pool(LABELS, {"a": 10, "b": 10, "c": 10}, seed=3).tolist())
    large = set(draw_pool(LABELS, {"a": 50, "b": 50, "c": 50}, seed=3).tolist())
    assert small < large
    only_a = [lab if lab == "a" else None for lab in LABELS]  # the other classes relabelled: a's rows unchanged
    a_rows = {r for r in draw_pool(LABELS, {"a": 30, "b": 1, "c": 1}, seed=3).tolist() if LABELS[r] == "a"}
    assert a_rows == {r for r in draw_pool(only_a, {"a": 30, None: 0}, seed=3).tolist() if only_a[r] == "a"}


def test_pool_is_a_uniform_sample_within_the_class() -> None:
    labels: list[str | None] = ["a"] * 1000
    hits = np.zeros(1000)
    for seed in range(200):
        hits[draw_pool(labels, {"a": 100}, seed=seed)] += 1
    # each row is drawn with probability 0.1: 20 expected in 200 draws; no half of the folder is favoured
    assert abs(hits[:500].sum() - hits[500:].sum()) < 0.1 * hits.sum()
    assert hits.min() > 0


def test_default_rule_is_a_multiple_of_the_quota_with_a_floor() -> None:
    files = {"a": 500, "b": 120, "c": 7}
    sizes = pool_sizes(files, PoolRule("auto"), size=9, balance="uniform", quota_rule=compute_quotas)
    assert sizes == {"a": min(500, POOL_FACTOR * 3), "b": min(120, max(POOL_FACTOR * 3, POOL_MIN)), "c": 7}
    many = {f"class{i:04d}": 1000 for i in range(1000)}  # 300 over 1,000 classes: quotas 1 and 0
    sizes = pool_sizes(many, PoolRule("auto"), size=300, balance="uniform", quota_rule=compute_quotas)
    assert sorted(set(sizes.values())) == [POOL_MIN, POOL_FACTOR]
    assert sum(sizes.values()) == 300 * POOL_FACTOR + 700 * POOL_MIN
    assert pool_sizes(files, PoolRule("fixed", 50), size=9, balance="uniform", quota_rule=compute_quotas) == \
        {"a": 50, "b": 50, "c": 7}
    assert pool_sizes(files, PoolRule("all"), size=9, balance="uniform", quota_rule=compute_quotas) == files


def test_choose_pool_reports_counts_and_completeness() -> None:
    pool = choose_pool(LABELS, PoolRule("fixed", 20), size=9, balance="uniform", seed=0, quota_rule=compute_quotas)
    assert pool.class_files == {"a": 500, "b": 120, "c": 7} and pool.class_pool == {"a": 20, "b": 20, "c": 7}
    assert not pool.complete and pool.rows.size == 47
    section = pool.manifest_section([f"p{i}" for i in pool.rows], seed=0)
    assert section["files"] == 627 and section["pooled"] == 47 and section["value"] == 20
    assert section["classes"][0] == {"label": "a", "files": 500, "pool": 20}
    whole = choose_pool(LABELS, PoolRule("fixed", 500), size=9, balance="uniform", seed=0, quota_rule=compute_quotas)
    assert whole.complete and np.array_equal(whole.rows, np.arange(len(LABELS)))
    assert pool_digest(["b", "a"]) == pool_digest(["a", "b"]) != pool_digest(["a"])


def test_proportional_quotas_of_a_pool_follow_the_folder_not_the_pool() -> None:
    folder = {"big": 9000, "small": 1000}
    rule = pooled_quota_rule(compute_quotas, folder)
    plain = {q.label: q.quota for q in compute_quotas({"big": 100, "small": 100}, 50, "proportional")}
    assert plain == {"big": 25, "small": 25}  # what the pool alone would say
    assert {q.label: q.quota for q in rule({"big": 100, "small": 100}, 50, "proportional")} == {"big": 45, "small": 5}
    capped = {q.label: (q.quota, q.requested, q.available) for q in rule({"big": 100, "small": 2}, 50, "proportional")}
    assert capped == {"big": (48, 45, 100), "small": (2, 5, 2)}  # the shortfall moves to the other class
    uniform = rule({"big": 100, "small": 100}, 50, "uniform")
    assert uniform == compute_quotas({"big": 100, "small": 100}, 50, "uniform")
