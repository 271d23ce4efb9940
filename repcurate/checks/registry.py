"""The registered checks, in run order (cheap first). Adding a check: one module plus one ``register`` line here
(or ``register(MyCheck)`` from a plugin); tests/unit/checks/test_contract.py then checks it like the others."""
from __future__ import annotations

from repcurate.checks.activation_ranges import ActivationRangesCheck
from repcurate.checks.base import Check
from repcurate.checks.class_coverage import ClassCoverageCheck
from repcurate.checks.distribution_shift import DistributionShiftCheck
from repcurate.checks.duplicates import DuplicatesCheck
from repcurate.checks.eval_data import EvalDataCheck
from repcurate.checks.preprocessing_parity import PreprocessingParityCheck
from repcurate.checks.set_size import SetSizeCheck
from repcurate.registry import lookup, registrar

#: check id → check class, in run order.
REGISTRY: dict[str, type[Check]] = {}
register = registrar(REGISTRY, "check", name_of=lambda check: check.id)

register(EvalDataCheck)
register(SetSizeCheck)
register(ClassCoverageCheck)
register(PreprocessingParityCheck)
register(DuplicatesCheck)
register(DistributionShiftCheck)
register(ActivationRangesCheck)

#: The built-in checks (kept for callers that import the tuple; the suite reads :func:`registered`).
CHECKS: tuple[type[Check], ...] = tuple(REGISTRY.values())


def registered() -> tuple[type[Check], ...]:
    """Every registered check class, in run order (including checks registered after import)."""
    return tuple(REGISTRY.values())


def get(check_id: str) -> type[Check]:
    """The check registered as ``check_id`` (``ValueError`` naming the closest id otherwise)."""
    return lookup(REGISTRY, check_id, "check")


def check_ids() -> list[str]:
    return list(REGISTRY)
