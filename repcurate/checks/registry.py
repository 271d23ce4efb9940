"""The registered checks, in run order (cheap first). Adding a check: one module plus one line here."""
from __future__ import annotations

from repcurate.checks.activation_ranges import ActivationRangesCheck
from repcurate.checks.base import Check
from repcurate.checks.class_coverage import ClassCoverageCheck
from repcurate.checks.distribution_shift import DistributionShiftCheck
from repcurate.checks.duplicates import DuplicatesCheck
from repcurate.checks.eval_data import EvalDataCheck
from repcurate.checks.preprocessing_parity import PreprocessingParityCheck
from repcurate.checks.set_size import SetSizeCheck

CHECKS: tuple[type[Check], ...] = (
    EvalDataCheck,
    SetSizeCheck,
    ClassCoverageCheck,
    PreprocessingParityCheck,
    DuplicatesCheck,
    DistributionShiftCheck,
    ActivationRangesCheck,
)


def check_ids() -> list[str]:
    return [c.id for c in CHECKS]
