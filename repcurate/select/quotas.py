"""Per-class quotas: uniform (water-filling) or proportional (largest remainder), capped by supply."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

BALANCES = ("uniform", "proportional")
K = TypeVar("K", bound=Hashable | None)


@dataclass(frozen=True)
class ClassQuota:
    """What a class was asked for, what it has, and what it gives."""

    label: str | None
    available: int
    requested: int
    quota: int
    #: Why a class the scan found gives nothing (e.g. all its images duplicate other classes'); None otherwise.
    reason: str | None = None

    @property
    def unmet(self) -> bool:
        return self.available < self.requested

    def to_dict(self) -> dict[str, object]:
        entry: dict[str, object] = {"label": self.label, "available": self.available,
                                    "requested": self.requested, "quota": self.quota}
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


def _largest_remainder(total: int, weights: dict[str | None, float], order: list[str | None]) -> dict[str | None, int]:
    """Integer split of ``total`` proportional to ``weights``; ties go to earlier entries of ``order``."""
    weight_sum = sum(weights.values())
    exact = {c: total * weights[c] / weight_sum for c in order}
    shares = {c: int(exact[c]) for c in order}
    left = total - sum(shares.values())
    by_remainder = sorted(order, key=lambda c: (-(exact[c] - shares[c]), order.index(c)))
    for c in by_remainder[:left]:
        shares[c] += 1
    return shares


def _sort_key(label: str | None) -> str:
    return "" if label is None else label


def water_fill(available: Mapping[K, int], size: int, order: Sequence[K],
               split: Callable[[list[K], int], Mapping[K, int]]) -> dict[K, int]:
    """Quotas for the labels of ``order`` summing to ``min(size, their supply)``, each at most ``available``.

    ``split(open_labels, remaining)`` shares ``remaining`` among ``open_labels``. Labels whose share exceeds
    their supply give everything; the rest is re-split among the others from scratch (adding up per-round
    splits compounds rounding: 11/11/11/10/10/10/9). The one water-filling loop of :func:`compute_quotas`
    and of a candidate pool's quota rule (:func:`repcurate.select.pool.pooled_quota_rule`).
    """
    quota = dict.fromkeys(order, 0)
    remaining = min(size, sum(available[label] for label in order))
    open_labels = list(order)
    while remaining > 0 and open_labels:
        share = split(open_labels, remaining)
        capped = [label for label in open_labels if available[label] < share.get(label, 0)]
        if not capped:
            quota.update(share)
            break
        for label in capped:
            quota[label] = available[label]
            remaining -= available[label]
        open_labels = [label for label in open_labels if label not in capped]
    return quota


def compute_quotas(available: dict[str | None, int], size: int, balance: str = "uniform") -> list[ClassQuota]:
    """Quotas summing to ``min(size, total available)``.

    ``uniform``: every class is asked for an equal share; a class with fewer images gives all it
    has and the shortfall is spread over the others (water-filling). ``proportional``: shares
    follow class frequencies. Deterministic: ties are broken by class name.
    """
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {BALANCES}, got {balance!r}")
    if size < 1:
        raise ValueError("size must be at least 1")
    order = sorted((c for c in available if available[c] > 0), key=_sort_key)
    if not order:
        return []
    weights = {c: 1.0 if balance == "uniform" else float(available[c]) for c in order}
    requested = _largest_remainder(size, weights, order)
    quota = water_fill(available, size, order,
                       lambda open_classes, remaining: _largest_remainder(
                           remaining, {c: weights[c] for c in open_classes}, open_classes))
    return [ClassQuota(c, available[c], requested[c], quota[c]) for c in order]
