"""Fail early: MCT's graph reader runs on the model before ``confirm`` decodes, quantizes or scores anything."""
from __future__ import annotations

from typing import Any

import numpy as np

from repcurate.errors import InputError
from repcurate.frameworks.base import Framework
from repcurate.frameworks.ultralytics_hint import untraceable_hint


def require_traceable(quantizer: Any, framework: Framework, model: Any, sample: np.ndarray, spec: str) -> None:
    """With the MCT quantizer: read the prepared ``model``'s graph as MCT will (PyTorch: its torch.fx tracer) on
    ``sample`` (a batch or two of the set); a model it cannot read is :class:`InputError` (exit 3) naming where and
    the fix, in seconds instead of after every calibration set was drawn and the eval images decoded."""
    if getattr(quantizer, "name", None) != "mct":
        return
    result = framework.mct.preflight(model, np.asarray(sample[: min(len(sample), 2)], dtype=np.float32))
    if result.ok or result.name is None:
        return
    where = f" at {result.location}" if result.location else ""
    fix = untraceable_hint(model) or (result.remedies[0] if result.remedies else "make the model traceable")
    raise InputError(f"{spec}: {result.reader} cannot read the model{where} ({result.error}); fix: {fix} "
                     "(repcurate doctor lists every remedy)")
