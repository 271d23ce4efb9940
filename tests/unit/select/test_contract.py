"""Contract of every registered selection strategy (sklearn's estimator_checks, for ``pick``): one signature,
and what every strategy must return on real embeddings (scikit-learn's digits)."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from repcurate.registry import lookup
from repcurate.select.strategies import REGISTRY, Strategy, pick, register
from tests.unit.select.test_strategies import NEAR, digits, near_duplicate_groups

MEMBERS = sorted(REGISTRY)
UNIFORM = list(inspect.signature(Strategy.__call__).parameters)[1:]  # without self


@pytest.mark.parametrize("name", MEMBERS)
def test_every_strategy_has_the_one_pick_signature(name: str) -> None:
    parameters = inspect.signature(REGISTRY[name]).parameters
    assert list(parameters) == UNIFORM
    assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in UNIFORM[2:])


@pytest.mark.parametrize("name", MEMBERS)
def test_every_strategy_returns_distinct_eligible_python_ints_and_is_deterministic(name: str) -> None:
    x, _ = digits()
    eligible = np.random.default_rng(2).random(x.shape[0]) < 0.3
    weights = np.random.default_rng(3).random(x.shape[0])
    target = x[::7]
    first = pick(name, x, 25, seed=4, eligible=eligible, near_duplicate=NEAR, weights=weights, target=target)
    again = pick(name, x, 25, seed=4, eligible=eligible, near_duplicate=NEAR, weights=weights, target=target)
    assert first == again and len(first) == 25 == len(set(first))
    assert all(type(i) is int for i in first) and eligible[first].all()


@pytest.mark.parametrize("name", MEMBERS)
def test_every_strategy_keeps_near_duplicates_apart(name: str) -> None:
    x, group = near_duplicate_groups()
    picked = pick(name, x, 40, seed=0, eligible=np.ones(len(x), dtype=bool), near_duplicate=NEAR)
    assert len(set(group[picked].tolist())) == len(picked) <= 20


@pytest.mark.parametrize("name", MEMBERS)
def test_every_strategy_gives_nothing_for_zero_picks_or_no_eligible_row(name: str) -> None:
    x, _ = digits()
    assert pick(name, x[:50], 0, seed=0, eligible=np.ones(50, dtype=bool), near_duplicate=NEAR) == []
    assert pick(name, x[:50], 5, seed=0, eligible=np.zeros(50, dtype=bool), near_duplicate=NEAR) == []


def test_a_registered_strategy_is_picked_by_name_and_a_taken_name_is_refused() -> None:
    def first_rows(x, k, *, seed, eligible, near_duplicate, weights=None, target=None):
        return [int(i) for i in np.flatnonzero(eligible)[:k]]

    register(first_rows, name="first_rows_for_test")
    try:
        x, _ = digits()
        assert pick("first_rows_for_test", x, 3, seed=0, eligible=np.ones(len(x), dtype=bool), near_duplicate=0) == [0, 1, 2]
        with pytest.raises(ValueError, match="already registered"):
            register(first_rows, name="kmeans")
    finally:
        del REGISTRY["first_rows_for_test"]
    with pytest.raises(ValueError, match="did you mean 'kmeans'"):
        lookup(REGISTRY, "kmean", "strategy")
