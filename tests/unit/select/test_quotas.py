"""Per-class quotas: uniform water-filling and proportional largest remainder."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.select.quotas import ClassQuota, compute_quotas


def as_table(quotas: list[ClassQuota]) -> list[tuple[str | None, int, int, int]]:
    return [(q.label, q.available, q.requested, q.quota) for q in quotas]


def test_uniform_exact_split() -> None:
    quotas = compute_quotas({"a": 50, "b": 50, "c": 50, "d": 50}, 20, "uniform")
    assert as_table(quotas) == [("a", 50, 5, 5), ("b", 50, 5, 5), ("c", 50, 5, 5), ("d", 50, 5, 5)]
    assert not any(q.unmet for q in quotas)


def test_uniform_remainder_goes_to_earlier_names_whatever_the_input_order() -> None:
    expected = [("a", 9, 4, 4), ("b", 9, 3, 3), ("c", 9, 3, 3)]
    assert as_table(compute_quotas({"a": 9, "b": 9, "c": 9}, 10)) == expected
    assert as_table(compute_quotas({"c": 9, "a": 9, "b": 9}, 10)) == expected
    assert as_table(compute_quotas({"b": 9, "c": 9, "a": 9}, 10)) == expected


def test_uniform_long_tail_small_classes_give_all_and_rest_is_redistributed() -> None:
    quotas = compute_quotas({"a": 100, "b": 3, "c": 50, "d": 1, "e": 7}, 40, "uniform")
    # Every class is asked for 8; b, d, e give all they have (11); the other 29 go 15/14 to a/c.
    assert as_table(quotas) == [("a", 100, 8, 15), ("b", 3, 8, 3), ("c", 50, 8, 14), ("d", 1, 8, 1), ("e", 7, 8, 7)]
    assert sum(q.quota for q in quotas) == 40
    assert [q.label for q in quotas if q.unmet] == ["b", "d", "e"]


def test_uniform_water_filling_needs_several_rounds() -> None:
    # Round 1 (7 each) fills c; round 2 (9 each for a, b, d... ) fills b; the rest goes to a and d.
    quotas = compute_quotas({"a": 100, "b": 12, "c": 5, "d": 100}, 60, "uniform")
    assert as_table(quotas) == [("a", 100, 15, 22), ("b", 12, 15, 12), ("c", 5, 15, 5), ("d", 100, 15, 21)]
    assert sum(q.quota for q in quotas) == 60


def test_uniform_shortfall_is_spread_evenly_not_by_compounded_rounding() -> None:
    available = {"c0": 37, "c1": 41, "c2": 53, "c3": 34, "c4": 46, "c5": 50, "c6": 13, "c7": 3}
    quotas = compute_quotas(available, 75, "uniform")
    # c7 gives its 3; the other 72 are split 11/11/10/10/10/10/10, not 11/11/11/10/10/10/9.
    assert [q.quota for q in quotas] == [11, 11, 10, 10, 10, 10, 10, 3]
    assert [q.requested for q in quotas] == [10, 10, 10, 9, 9, 9, 9, 9]


def test_size_larger_than_supply_takes_everything_and_reports_unmet_requests() -> None:
    quotas = compute_quotas({"cat": 3, "dog": 2}, 10, "uniform")
    assert as_table(quotas) == [("cat", 3, 5, 3), ("dog", 2, 5, 2)]
    assert all(q.unmet for q in quotas)
    proportional = compute_quotas({"cat": 3, "dog": 2}, 10, "proportional")
    assert as_table(proportional) == [("cat", 3, 6, 3), ("dog", 2, 4, 2)]
    assert all(q.unmet for q in proportional)


def test_proportional_follows_frequencies() -> None:
    assert as_table(compute_quotas({"a": 60, "b": 30, "c": 10}, 10, "proportional")) == [
        ("a", 60, 6, 6), ("b", 30, 3, 3), ("c", 10, 1, 1)]
    # exact shares 2.5 / 1.5 / 1.0: the one left over goes to the tied remainder of the earlier name
    assert as_table(compute_quotas({"b": 3, "a": 5, "c": 2}, 5, "proportional")) == [
        ("a", 5, 3, 3), ("b", 3, 1, 1), ("c", 2, 1, 1)]
    # largest remainder wins over name order: 13 * (7, 2, 1) / 10 = 9.1, 2.6, 1.3
    assert as_table(compute_quotas({"a": 7, "b": 2, "c": 1}, 13, "proportional")) == [
        ("a", 7, 9, 7), ("b", 2, 3, 2), ("c", 1, 1, 1)]
    assert as_table(compute_quotas({"a": 70, "b": 20, "c": 10}, 13, "proportional")) == [
        ("a", 70, 9, 9), ("b", 20, 3, 3), ("c", 10, 1, 1)]


def test_unlabelled_class_is_none_and_sorts_first() -> None:
    quotas = compute_quotas({"a": 5, None: 5}, 3, "uniform")
    assert as_table(quotas) == [(None, 5, 2, 2), ("a", 5, 1, 1)]
    assert quotas[0].to_dict() == {"label": None, "available": 5, "requested": 2, "quota": 2}
    assert as_table(compute_quotas({None: 40}, 300)) == [(None, 40, 300, 40)]


def test_more_classes_than_size_gives_zero_quotas_to_later_names() -> None:
    quotas = compute_quotas({str(d): 10 for d in range(10)}, 4, "uniform")
    assert [q.quota for q in quotas] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert sum(q.quota for q in quotas) == 4


def test_empty_classes_are_dropped_and_bad_arguments_rejected() -> None:
    assert as_table(compute_quotas({"a": 0, "b": 4}, 2)) == [("b", 4, 2, 2)]
    assert compute_quotas({"a": 0}, 5) == []
    assert compute_quotas({}, 5) == []
    with pytest.raises(ValueError, match="balance"):
        compute_quotas({"a": 1}, 1, "random")
    with pytest.raises(ValueError, match="size"):
        compute_quotas({"a": 1}, 0)


@pytest.mark.parametrize("balance", ["uniform", "proportional"])
def test_invariants_on_random_supplies(balance: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        classes = int(rng.integers(1, 9))
        available = {f"c{i}": int(v) for i, v in enumerate(rng.integers(0, 60, size=classes))}
        size = int(rng.integers(1, 250))
        quotas = compute_quotas(available, size, balance)
        total = sum(available.values())
        assert sum(q.quota for q in quotas) == min(size, total)
        assert all(0 <= q.quota <= q.available for q in quotas)
        assert sum(q.requested for q in quotas) == size
        assert quotas == compute_quotas(dict(reversed(available.items())), size, balance)
        if balance == "uniform" and quotas:
            # water-filling: a class short of its supply is within one of the largest quota
            open_quotas = [q.quota for q in quotas if q.quota < q.available]
            if open_quotas:
                assert max(q.quota for q in quotas) - min(open_quotas) <= 1


def test_water_fill_gives_a_short_class_everything_and_resplits_the_rest_from_scratch():
    from repcurate.select.quotas import water_fill

    def even(labels, total):  # equal shares, the remainder to the first labels
        return {label: total // len(labels) + (i < total % len(labels)) for i, label in enumerate(labels)}

    available = {"a": 2, "b": 100, "c": 100, "d": 0}
    assert water_fill(available, 30, ["a", "b", "c"], even) == {"a": 2, "b": 14, "c": 14}
    assert water_fill(available, 500, ["a", "b", "c"], even) == {"a": 2, "b": 100, "c": 100}
    assert water_fill(available, 30, [], even) == {}
