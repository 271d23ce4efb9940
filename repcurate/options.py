"""Up-front checks of the commands' numeric and named options.

``build``, ``confirm`` and ``doctor`` call these before they load a model or read a file, so a value
out of range stops the run at once with a usage error (exit 2) naming the option and its range,
instead of failing (or silently misbehaving) after minutes of work. Library callers get the same
checks; the messages name the command-line option and, where it differs, the keyword argument.
"""
from __future__ import annotations

import importlib.util
import math
import numbers
from pathlib import Path

from repcurate.errors import UsageError

#: Default set size: NNCF's and OpenVINO's default calibration ``subset_size`` (300), inside the
#: 100–1000 range vendors recommend; large enough for stable per-channel means and ranges, small
#: enough that a PTQ run stays fast.
DEFAULT_SIZE = 300
#: Seeds feed numpy's SeedSequence and faiss; one 32-bit word keeps every consumer happy.
MAX_SEED = 2**32 - 1
#: Counts (set size, eval images) beyond this are mistakes, not datasets.
MAX_COUNT = 2**31 - 1
MAX_BATCH_SIZE = 65_536
MAX_WORKERS = 256
MAX_RANDOM_SETS = 1_000
MAX_GPTQ_EPOCHS = 10_000


class OptionError(UsageError, ValueError):
    """An option value out of its range (exit 2); also a ValueError for library callers."""


def _label(option: str, keyword: str | None) -> str:
    return option if keyword is None else f"{option} ({keyword})"


def require_int(value: object, option: str, low: int, high: int, *, keyword: str | None = None) -> int:
    """``value`` as an int in ``low..high``, else an :class:`OptionError` naming ``option`` and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise OptionError(f"{_label(option, keyword)}: {value!r} is not an integer from {low} to {high}; "
                          f"fix: pass {option} {low}..{high}")
    return int(value)


def require_number(value: object, option: str, *, low: float, high: float = math.inf, low_open: bool = False,
                   keyword: str | None = None, meaning: str = "") -> float:
    """``value`` as a finite float with ``low <= value <= high`` (``low < value`` when ``low_open``)."""
    above = f"> {low:g}" if low_open else f">= {low:g}"
    allowed = f"a finite number {above}" + (f" and <= {high:g}" if math.isfinite(high) else "") + meaning
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (number > low if low_open else number >= low) and number <= high
    if not ok:
        raise OptionError(f"{_label(option, keyword)}: {value!r} is not {allowed}; fix: pass {allowed}")
    return float(value)  # type: ignore[arg-type]


def require_seed(value: object) -> int:
    return require_int(value, "--seed", 0, MAX_SEED)


def _mct_platforms() -> dict[str, set[str]] | None:
    """Device type → TPC versions, read from the installed MCT's package folders (nothing imported:
    importing MCT takes seconds); None when MCT is absent or laid out differently."""
    try:
        spec = importlib.util.find_spec("model_compression_toolkit")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    models = Path(next(iter(spec.submodule_search_locations))) / "target_platform_capabilities" / "tpc_models"
    platforms: dict[str, set[str]] = {}
    for device in sorted(models.glob("*_tpc")):
        versions = {v.name[1:].replace("_", ".") for v in device.glob("v*_*") if (v / "tpc.py").is_file()}
        if versions:
            platforms[device.name[: -len("_tpc")]] = versions
    return platforms or None


def require_tpc(spec: object) -> str:
    """``device:version`` (e.g. ``imx500:1.0``; the version defaults to 1.0) that the installed MCT knows."""
    if not isinstance(spec, str) or not spec.strip():
        raise OptionError(f"--tpc: {spec!r} is not device:version; fix: e.g. imx500:1.0, tflite:1.0, qnnpack:1.0")
    device, _, version = spec.partition(":")
    version = version or "1.0"
    known = _mct_platforms()
    if known is None:
        return spec  # MCT will judge it when it is loaded
    examples = ", ".join(f"{d}:{v}" for d in sorted(known) for v in sorted(known[d]))
    if device not in known or version not in known[device]:
        raise OptionError(f"--tpc: {spec!r} is not a target platform of the installed MCT; fix: use one of {examples}")
    return spec
